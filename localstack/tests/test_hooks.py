"""LocalStack's init hook, run unchanged against moto and against LocalStack itself (on the host):
it creates the queue with its DLQ (redrive after the receive count, SSE on both) and the secrets,
and converges when run again."""

import json

import pytest

from stack import HOOK, NAMES, SERVICES, aws, base_env, environment_of, get, load_compose, run

QUEUE, DLQ = NAMES["queue"]["name"], NAMES["queue"]["dlq"]


def run_hook(endpoint: str, extra: dict[str, str] | None = None):
    """The hook with the compose file's localstack environment, as LocalStack would run it."""
    env = base_env() | environment_of(load_compose()["services"]["localstack"], {}) | (extra or {})
    env["AWS_ENDPOINT_URL"] = endpoint
    return run(["bash", str(HOOK)], env=env)


@pytest.fixture(params=["moto", "localstack"])
def endpoint(request, moto_endpoint, localstack_endpoint):
    return moto_endpoint if request.param == "moto" else localstack_endpoint


def queue_attributes(endpoint: str, name: str) -> dict:
    sqs = aws(endpoint, "sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def secret(endpoint: str, name: str) -> str:
    return aws(endpoint, "secretsmanager").get_secret_value(SecretId=name)["SecretString"]


def test_the_hook_creates_the_queue_its_dead_letter_queue_and_the_secrets_and_converges(endpoint):
    # A first run with another database host, then the compose file's: the second run meets
    # everything already there, fails on nothing and brings each secret to the wanted value.
    first = run_hook(endpoint, {"DB_HOST": "db.internal"})
    assert "wharf-aws: ready" in first.stdout
    assert json.loads(secret(endpoint, SERVICES["orders"]["connection_secret"]))["host"] == "db.internal"
    second = run_hook(endpoint)
    assert "wharf-aws: ready" in second.stdout

    queue, dlq = queue_attributes(endpoint, QUEUE), queue_attributes(endpoint, DLQ)
    redrive = json.loads(queue["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == NAMES["queue"]["max_receive_count"]
    assert queue.get("SqsManagedSseEnabled") == "true" and dlq.get("SqsManagedSseEnabled") == "true"

    url = aws(endpoint, "sqs").get_queue_url(QueueName=QUEUE)["QueueUrl"]
    assert secret(endpoint, NAMES["queue"]["url_secret"]) == url
    passwords = environment_of(load_compose()["services"]["postgres"], {})
    for names in SERVICES.values():
        value = json.loads(secret(endpoint, names["connection_secret"]))
        assert value == {
            "engine": "postgres",
            "host": "postgres",
            "port": 5432,
            "username": names["database_role"],
            "password": passwords[f"{names['database_role'].upper()}_DB_PASSWORD"],
            "dbname": names["database"],
        }


def test_the_hook_fails_loudly_when_the_endpoint_is_unreachable():
    result = run(["bash", str(HOOK)], env=base_env() | {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, check=False, timeout=120)
    assert result.returncode != 0
    assert "wharf-aws: ready" not in result.stdout


def test_localstack_reports_its_init_stage_where_the_compose_health_check_reads_it(localstack_endpoint):
    status, body = get(f"{localstack_endpoint}/_localstack/init/ready")
    assert status == 200
    report = json.loads(body)
    assert isinstance(report["completed"], bool) and isinstance(report["scripts"], list)
    status, body = get(f"{localstack_endpoint}/_localstack/health")
    services = json.loads(body)["services"]
    for name in NAMES["localstack"]["services"].split(","):
        assert services[name] in ("available", "running"), services


def test_the_compose_health_check_reads_localstack_s_init_report(localstack_endpoint):
    """The localstack service's health check, run here against the host LocalStack. No hooks are
    registered with it (they run from these tests), so it must answer "not ready" (exit 1) by
    reading the report, not by crashing on it."""
    test = load_compose()["services"]["localstack"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    command = [part.replace("http://localhost:4566", localstack_endpoint) for part in test[1:]]
    result = run(command, env=base_env(), check=False)
    assert result.returncode == 1 and result.stderr == "", result.stderr
