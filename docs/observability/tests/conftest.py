"""Shared reading of the observability artifacts for the checks beside them."""

import json
import pathlib
import re
import sys

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "scripts"))

from deployment_names import NAMES  # noqa: E402

OBSERVABILITY = REPO / "docs" / "observability"
DASHBOARDS = OBSERVABILITY / "dashboards"
TERRAFORM_DASHBOARD = REPO / "terraform" / "modules" / "observability" / "dashboard.json.tftpl"

# The placeholders the Terraform module fills in (templatefile in dashboard.tf).
PLACEHOLDERS = {"region", "metrics_namespace", "cluster_name", "namespace", "queue_name", "dlq_name",
                "db_instance", "alb_arn_suffix"}

METRIC = re.compile(r"\bwharf_[a-z0-9_]+\b")


def render(template: str) -> dict:
    """A CloudWatch body template rendered with the deployment's names, parsed."""
    values = {
        "region": NAMES["aws"]["region"],
        "metrics_namespace": NAMES["observability"]["metrics_namespace"],
        "cluster_name": NAMES["aws"]["cluster"],
        "namespace": NAMES["namespace"],
        "queue_name": NAMES["queue"]["name"],
        "dlq_name": NAMES["queue"]["dlq"],
        "db_instance": "wharf-dev",
        "alb_arn_suffix": "app/wharf/0123456789abcdef",
    }
    found = set(re.findall(r"\$\{([a-z_]+)\}", template))
    assert found <= PLACEHOLDERS, f"placeholders Terraform does not fill: {sorted(found - PLACEHOLDERS)}"
    return json.loads(re.sub(r"\$\{([a-z_]+)\}", lambda m: values[m.group(1)], template))


@pytest.fixture(scope="session")
def grafana() -> dict:
    return json.loads((DASHBOARDS / "grafana.json").read_text())


@pytest.fixture(scope="session")
def cloudwatch_template() -> str:
    return (DASHBOARDS / "cloudwatch.json").read_text()


@pytest.fixture(scope="session")
def alerts() -> dict:
    return yaml.safe_load((OBSERVABILITY / "alerts.yml").read_text())


def dashboard_metrics() -> set[str]:
    """Every wharf_* series name either dashboard or the alert rules read, without the suffixes
    PromQL adds to a histogram's samples."""
    names = set()
    for path in [DASHBOARDS / "grafana.json", DASHBOARDS / "cloudwatch.json", OBSERVABILITY / "alerts.yml"]:
        names |= set(METRIC.findall(path.read_text()))
    return names

# `/health` names each service as docs/deployment.toml does.
SERVICES_HEALTH = {name: service["health_name"] for name, service in NAMES["services"].items()}
