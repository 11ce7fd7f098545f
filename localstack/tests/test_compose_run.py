"""localstack/docker-compose.yml run as processes (see compose_run.py): smoke, orders in and emails
out, each service on its own database, and the dead-letter drill over SQS; the RabbitMQ profile;
and typos in the compose file's variable names, queue name and secret ids fail the run."""

import json
import pathlib
import shutil

import pytest

from compose_run import ComposeRun
from stack import COMPOSE_FILE, NAMES, REPO, dotenv

ORDERS = 5


def drive(stack: ComposeRun, bus: str) -> dict:
    try:
        stack.provision()
        for service in ("products", "notifications", "orders"):
            stack.start(service)
        smoke = stack.smoke()
        counts = stack.orders_to_emails(ORDERS)
        counts["databases"] = stack.rows_in_own_databases()
        # `wharf dlq` as an operator of this stack runs it: with notifications' bus settings
        # (BUS, BUS_QUEUE, AMQP_URL, AWS_*), so it reads the queue the stack is configured with.
        operator = {k: v for k, v in stack.env_of("notifications").items()
                    if k in ("BUS", "BUS_QUEUE", "AMQP_URL") or k.startswith("AWS_")}
        assert operator["BUS"] == bus
        counts["dlq"] = stack.dlq_drill([], operator)
        counts["smoke"] = smoke.strip().splitlines()[-1] if smoke.strip() else ""
        return counts
    except AssertionError as err:
        raise AssertionError(f"{err}\n{stack.logs()}") from None
    finally:
        stack.stop()
        stack.drop_databases()
        shutil.rmtree(stack.work, ignore_errors=True)


def test_the_stack_over_sqs_smokes_delivers_every_order_email_and_dead_letters_a_poison_order(
    bin_dir, localstack_endpoint, postgres_url, amqp_url
):
    stack = ComposeRun(COMPOSE_FILE, {}, bin_dir, localstack_endpoint, postgres_url, amqp_url)
    counts = drive(stack, "sqs")
    print(f"compose run over SQS: {json.dumps(counts)}")
    assert counts["orders"] == counts["emails"] == ORDERS
    assert counts["dlq"]["attempts"] == NAMES["queue"]["max_receive_count"]


def test_the_rabbitmq_profile_switches_the_bus(bin_dir, localstack_endpoint, postgres_url, amqp_url):
    variables = dotenv(REPO / "localstack" / "rabbitmq.env")
    assert "rabbitmq" in variables["COMPOSE_PROFILES"].split(",")
    stack = ComposeRun(COMPOSE_FILE, variables, bin_dir, localstack_endpoint, postgres_url, amqp_url)
    assert stack.env_of("orders")["BUS"] == stack.env_of("notifications")["BUS"] == "rabbitmq"
    counts = drive(stack, "rabbitmq")
    print(f"compose run over RabbitMQ: {json.dumps(counts)}")
    assert counts["orders"] == counts["emails"] == ORDERS


# (what is changed in the compose file, the text, its typo)
TYPOS = {
    "variable name DATABASE_URL_SECRET (orders)": (
        "DATABASE_URL_SECRET: microservices-poc/OrderService", "DATABASE_URL_SECRT: microservices-poc/OrderService"),
    "variable name BUS (notifications)": (
        "      BUS: ${WHARF_BUS:-sqs}\n      BUS_QUEUE: notification-queue\n      SQS_QUEUE_URL_SECRET: microservices-poc/SQS/NotificationQueueUrl\n      AMQP_URL: amqp://guest:guest@rabbitmq:5672/%2f\n      BUS_MAX",
        "      BSU: ${WHARF_BUS:-sqs}\n      BUS_QUEUE: notification-queue\n      SQS_QUEUE_URL_SECRET: microservices-poc/SQS/NotificationQueueUrl\n      AMQP_URL: amqp://guest:guest@rabbitmq:5672/%2f\n      BUS_MAX"),
    "queue name (orders and notifications)": ("BUS_QUEUE: notification-queue", "BUS_QUEUE: notification-queu"),
    "secret id of the queue URL (orders and notifications)": (
        "SQS_QUEUE_URL_SECRET: microservices-poc/SQS/NotificationQueueUrl",
        "SQS_QUEUE_URL_SECRET: microservices-poc/SQS/NotificationQueueURL"),
    "secret id of a connection string (products)": (
        "DATABASE_URL_SECRET: microservices-poc/ProductService/ConnectionString",
        "DATABASE_URL_SECRET: microservices-poc/ProductsService/ConnectionString"),
}


@pytest.mark.parametrize("typo", sorted(TYPOS))
def test_a_typo_in_the_compose_file_fails_the_run(typo, tmp_path, bin_dir, localstack_endpoint, postgres_url, amqp_url):
    text, mistyped = TYPOS[typo]
    original = COMPOSE_FILE.read_text()
    assert text in original, f"the mutation no longer applies: {text!r}"
    mutated = tmp_path / "docker-compose.yml"
    mutated.write_text(original.replace(text, mistyped))
    stack = ComposeRun(mutated, {}, bin_dir, localstack_endpoint, postgres_url, amqp_url, timeout=30)
    with pytest.raises(AssertionError) as failure:
        drive(stack, "sqs")
    print(f"{typo}: {str(failure.value).splitlines()[0]}")
