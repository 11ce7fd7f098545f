"""Fixtures for the compose-stack checks. scripts/check-localstack.sh sets the environment:

  WHARF_BIN_DIR              the built products/orders/notifications/wharf binaries
  WHARF_LOCALSTACK_ENDPOINT  LocalStack on the host (its init hooks are run from here)
  WHARF_TEST_SQS_ENDPOINT    moto server (scripts/dev-services.sh)
  WHARF_TEST_POSTGRES_URL    the local PostgreSQL, as a superuser
  WHARF_TEST_AMQP_URL        the local RabbitMQ

A missing one is a failure, never a skip.
"""

import os
import pathlib

import pytest


def _required(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the tests through scripts/check-localstack.sh")
    return value


@pytest.fixture(scope="session")
def bin_dir() -> pathlib.Path:
    path = pathlib.Path(_required("WHARF_BIN_DIR"))
    for binary in ("products", "orders", "notifications", "wharf"):
        assert (path / binary).is_file(), f"{path / binary} is not built"
    return path


@pytest.fixture(scope="session")
def localstack_endpoint() -> str:
    return _required("WHARF_LOCALSTACK_ENDPOINT")


@pytest.fixture(scope="session")
def moto_endpoint() -> str:
    return _required("WHARF_TEST_SQS_ENDPOINT")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return _required("WHARF_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return _required("WHARF_TEST_AMQP_URL")

