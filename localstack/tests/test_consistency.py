"""The compose file, the Dockerfiles and the init scripts use docs/deployment.toml's names.

Service names, host and container ports, the queue, its DLQ and receive count, the secret ids,
the LocalStack image pin and hook mount, the runtime image, the user and the binary paths; and
every variable the compose file sets is one the services (or the containers it configures) know.
"""

import re

import pytest

from stack import COMPOSE_FILE, DATABASE_SCRIPT, HOOK, NAMES, REPO, SERVICES, dockerfile_env, environment_of, load_compose

COMPOSE = load_compose()
CONTRACT = (REPO / "docs" / "contract.md").read_text()
README = (REPO / "README.md").read_text()


def final_stage(dockerfile: str) -> str:
    return re.split(r"(?m)^FROM\s", dockerfile)[-1]


def test_compose_services_are_the_deployment_services_and_their_backing_services():
    expected = {s["compose_service"] for s in SERVICES.values()} | {"localstack", "postgres", "rabbitmq", "jaeger"}
    assert set(COMPOSE["services"]) == expected


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_publishes_its_host_port_on_its_container_port_and_builds_its_dockerfile(service):
    names = SERVICES[service]
    compose = COMPOSE["services"][names["compose_service"]]
    assert compose["ports"] == [f"{names['host_port']}:{names['container_port']}"]
    assert compose["build"] == {"context": "..", "dockerfile": f"services/{service}/Dockerfile"}
    assert compose["image"] == f"{names['workload']}:local"
    assert compose["restart"] == "unless-stopped"
    depends = compose["depends_on"]
    assert depends["localstack"] == {"condition": "service_healthy"}
    assert depends["postgres"] == {"condition": "service_healthy"}
    env = environment_of(compose, {})
    assert env["DATABASE_URL_SECRET"] == names["connection_secret"]
    assert env["AWS_ENDPOINT_URL"] == "http://localstack:4566"
    assert env["AWS_REGION"] == NAMES["aws"]["region"]
    assert "DATABASE_URL" not in env, "the connection string must come from Secrets Manager"


@pytest.mark.parametrize("service", ["orders", "notifications"])
def test_the_bus_services_use_the_queue_and_its_url_secret(service):
    env = environment_of(COMPOSE["services"][SERVICES[service]["compose_service"]], {})
    assert env["BUS"] == "sqs"
    assert env["BUS_QUEUE"] == NAMES["queue"]["name"]
    assert env["SQS_QUEUE_URL_SECRET"] == NAMES["queue"]["url_secret"]
    assert "SQS_QUEUE_URL" not in env


def test_notifications_dead_letters_after_the_queue_s_receive_count():
    env = environment_of(COMPOSE["services"]["notifications"], {})
    assert int(env["BUS_MAX_ATTEMPTS"]) == NAMES["queue"]["max_receive_count"]


def test_orders_reaches_products_on_its_container_port():
    env = environment_of(COMPOSE["services"]["orders"], {})
    assert env["PRODUCTS_URL"] == f"http://{SERVICES['products']['compose_service']}:{SERVICES['products']['container_port']}"


def test_localstack_is_pinned_and_mounts_the_hooks():
    localstack = COMPOSE["services"]["localstack"]
    assert localstack["image"] == NAMES["localstack"]["image"]
    assert localstack["image"].endswith(":" + NAMES["localstack"]["version"])
    env = environment_of(localstack, {})
    assert env["SERVICES"] == NAMES["localstack"]["services"]
    mount = f"./{NAMES['localstack']['init_dir'].removeprefix('localstack/')}:{NAMES['localstack']['init_mount']}:ro"
    assert mount in localstack["volumes"]
    assert (COMPOSE_FILE.parent / mount.split(":")[0]).resolve() == HOOK.parent
    assert "/_localstack/init/ready" in " ".join(localstack["healthcheck"]["test"])


def test_postgres_runs_the_database_script_and_shares_the_role_passwords_with_localstack():
    postgres = COMPOSE["services"]["postgres"]
    assert postgres["image"] == NAMES["localstack"]["postgres_image"]
    assert f"./postgres/{DATABASE_SCRIPT.name}:/docker-entrypoint-initdb.d/{DATABASE_SCRIPT.name}:ro" in postgres["volumes"]
    passwords = {k: v for k, v in environment_of(postgres, {}).items() if k.endswith("_DB_PASSWORD")}
    assert set(passwords) == {f"{s['database_role'].upper()}_DB_PASSWORD" for s in SERVICES.values()}
    localstack_env = environment_of(COMPOSE["services"]["localstack"], {})
    assert {k: localstack_env.get(k) for k in passwords} == passwords
    assert localstack_env["DB_HOST"] == "postgres"


def test_the_hook_creates_the_deployment_queue_dlq_and_secrets():
    hook = HOOK.read_text()
    assert f'queue="${{QUEUE_NAME:-{NAMES["queue"]["name"]}}}"' in hook
    assert NAMES["queue"]["dlq"] == NAMES["queue"]["name"] + "-dlq" and 'dlq="${DLQ_NAME:-$queue-dlq}"' in hook
    assert f'max_receive_count="${{MAX_RECEIVE_COUNT:-{NAMES["queue"]["max_receive_count"]}}}"' in hook
    assert f'prefix="${{SECRET_PREFIX:-{NAMES["aws"]["secret_prefix"]}}}"' in hook
    for names in SERVICES.values():
        secret = names["connection_secret"].removeprefix(NAMES["aws"]["secret_prefix"])
        assert f'"$prefix{secret}"' in hook
        assert f'"{names["database_role"]}$suffix" "{names["database"]}$suffix"' in hook
    assert f'"$prefix{NAMES["queue"]["url_secret"].removeprefix(NAMES["aws"]["secret_prefix"])}"' in hook


def test_the_database_script_creates_each_service_s_database_for_its_role():
    script = DATABASE_SCRIPT.read_text()
    for names in SERVICES.values():
        assert re.search(rf"^ensure_database {names['database_role']} {names['database']} ", script, re.M)


def known_variables() -> set[str]:
    """Variables the contract and the README document for the services."""
    found = set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]+)`", CONTRACT + README, re.M))
    found |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`(?:,|\s*\|)", CONTRACT + README))
    return found


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_variable_compose_sets_for_a_service_is_documented(service):
    known = known_variables()
    env = environment_of(COMPOSE["services"][SERVICES[service]["compose_service"]], {"OTEL_EXPORTER_OTLP_ENDPOINT": "x"})
    unknown = sorted(set(env) - known - {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})
    assert not unknown, f"{service} sets variables no service documents: {unknown}"


def test_every_variable_compose_sets_for_localstack_is_one_it_or_the_hook_reads():
    hook = HOOK.read_text()
    env = environment_of(COMPOSE["services"]["localstack"], {})
    localstack_settings = {"SERVICES", "AWS_DEFAULT_REGION", "LOCALSTACK_HOST", "SQS_ENDPOINT_STRATEGY", "LOCALSTACK_AUTH_TOKEN"}
    unread = sorted(name for name in env if name not in localstack_settings and f"${{{name}" not in hook)
    assert not unread, f"localstack sets variables neither LocalStack nor the hook reads: {unread}"


def test_every_variable_compose_sets_for_postgres_is_one_the_image_or_the_script_reads():
    script = DATABASE_SCRIPT.read_text()
    env = environment_of(COMPOSE["services"]["postgres"], {})
    image_settings = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
    unread = sorted(name for name in env if name not in image_settings and f"${{{name}" not in script)
    assert not unread, f"postgres sets variables neither the image nor the script reads: {unread}"


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_dockerfile_builds_its_binary_onto_the_runtime_image(service):
    names, image = SERVICES[service], NAMES["image"]
    dockerfile = (REPO / "services" / service / "Dockerfile").read_text()
    binary = f"{image['binary_dir']}/{names['binary']}"
    assert f"ARG RUST_IMAGE={image['builder']}\n" in dockerfile
    assert f"ARG RUNTIME_IMAGE={image['runtime']}\n" in dockerfile
    assert image["builder"].endswith("-trixie") and "debian13" in image["runtime"], "builder and runtime share glibc"
    final = final_stage(dockerfile)
    assert final.startswith("${RUNTIME_IMAGE}")
    assert f"cargo build --release --locked --package {service} --bin {names['binary']}" in dockerfile
    assert f"COPY --from=build /out/{names['binary']} {binary}\n" in final
    assert f"EXPOSE {names['container_port']}\n" in final
    assert f"USER {image['uid']}:{image['uid']}\n" in final
    assert f'CMD ["{binary}", "healthcheck"]' in final
    assert f'ENTRYPOINT ["{binary}"]' in final
    assert re.search(r'org\.opencontainers\.image\.title="%s"' % names["workload"], final)
    env = dockerfile_env(REPO / "services" / service / "Dockerfile")
    assert env["PORT"] == str(names["container_port"]) and env["HOST"] == "0.0.0.0"
