"""The names Terraform creates equal the deployment contract's (docs/deployment.toml), and the
queue's maxReceiveCount equals the services' BUS_MAX_ATTEMPTS default in the Rust source."""

import re

import pytest

from hcl import (ENVIRONMENTS, NAMES, REPO, SERVICES, TERRAFORM, locals_of, module_calls, named,
                 resources, variables)


def defaults(env):
    return {name: spec.get("default") for name, spec in variables(TERRAFORM / "environments" / env).items()}


def rust_default_max_attempts():
    source = (REPO / "bus" / "src" / "config.rs").read_text()
    match = re.search(r"pub const DEFAULT_MAX_ATTEMPTS: u32 = (\d+);", source)
    assert match, "bus/src/config.rs no longer declares DEFAULT_MAX_ATTEMPTS"
    return int(match.group(1))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_aws_names(env):
    d = defaults(env)
    assert d["region"] == NAMES["aws"]["region"]
    assert d["cluster_name"] == NAMES["aws"]["cluster"]
    assert d["namespace"] == NAMES["namespace"]
    assert d["queue_name"] == NAMES["queue"]["name"]
    assert d["dlq_name"] == NAMES["queue"]["dlq"]
    assert d["queue_url_secret"] == NAMES["queue"]["url_secret"]
    assert d["metrics_namespace"] == NAMES["observability"]["metrics_namespace"]
    assert d["collector_namespace"] == NAMES["observability"]["collector_namespace"]
    assert d["collector_service_account"] == NAMES["observability"]["collector_service_account"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_service_names(env):
    services = defaults(env)["services"]
    assert set(services) == set(SERVICES)
    for key, expected in SERVICES.items():
        got = services[key]
        assert got["workload"] == expected["workload"], key
        assert got["service_tag"] == expected["cost_service_tag"], key
        assert got["database"] == expected["database"], key
        assert got["connection_secret"] == expected["connection_secret"], key
        assert got["connection_secret"].startswith(NAMES["aws"]["secret_prefix"] + "/")


def test_default_environment_is_the_contracts():
    from hcl import tfvars
    assert tfvars(NAMES["aws"]["environment"])["environment"] == NAMES["aws"]["environment"]
    for env in ENVIRONMENTS:
        assert tfvars(env)["environment"] == env


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_max_receive_count_is_bus_max_attempts(env):
    rust = rust_default_max_attempts()
    assert NAMES["queue"]["max_receive_count"] == rust, "docs/deployment.toml disagrees with bus/src/config.rs"
    assert defaults(env)["max_receive_count"] == rust
    assert "max_receive_count" not in __import__("hcl").tfvars(env)
    call = module_calls(TERRAFORM / "environments" / env)["messaging"]
    assert call["max_receive_count"] == "${var.max_receive_count}"


def test_the_queue_redrives_with_that_count():
    queue = named([{r[0]: {r[1]: r[2]}} for r in resources(TERRAFORM / "modules" / "messaging")],
                  "aws_sqs_queue", "queue")
    assert "maxReceiveCount = var.max_receive_count" in queue["redrive_policy"]
    assert "deadLetterTargetArn = aws_sqs_queue.dlq.arn" in queue["redrive_policy"]
    assert variables(TERRAFORM / "modules" / "messaging")["max_receive_count"]["default"] == rust_default_max_attempts()


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_workloads_name_the_service_accounts_roles_and_repositories(env):
    directory = TERRAFORM / "environments" / env
    calls = module_calls(directory)
    assert locals_of(directory)["workloads"] == "${{for key, s in var.services : s.workload => s.service_tag}}"
    assert calls["registry"]["repositories"] == "${local.workloads}"
    assert calls["observability"]["workloads"] == "${local.workloads}"
    identity = calls["service_identity"]
    assert identity["namespace"] == "${var.namespace}"
    assert "s.workload => {service_account = s.workload" in identity["services"]
    # database roles are the workloads too: the bootstrap Job and the secrets agree on them
    assert "role = s.workload" in calls["database"]["databases"]
    assert "role = s.workload" in calls["database_bootstrap"]["databases"]
    assert "role = s.workload" in calls["secrets"]["connection_secrets"]
    assert calls["cluster"]["cluster_name"] == "${var.cluster_name}"
    assert calls["deploy_identity"]["deploy_namespace"] == "${var.namespace}"


def test_ecr_repository_names():
    repo = named([{r[0]: {r[1]: r[2]}} for r in resources(TERRAFORM / "modules" / "registry")],
                 "aws_ecr_repository", "service")
    assert repo["name"] == "${var.name_prefix}${each.key}"
    # the prefix example of the contract passes the prefix's validation
    validation = variables(TERRAFORM / "modules" / "registry")["name_prefix"]["validation"][0]
    pattern = re.search(r'regex\("(.+?)", var\.name_prefix\)', validation["condition"]).group(1)
    assert re.fullmatch(pattern.replace("\\\\", "\\"), NAMES["image_prefix_example"])


def test_irsa_trust_names_the_namespace_and_service_account():
    trust = [d for d in __import__("hcl").data_sources(TERRAFORM / "modules" / "service-identity")
             if d[1] == "trust"][0][2]
    condition = trust["statement"][0]["condition"]
    sub = next(c for c in condition if c["variable"] == "${local.issuer}:sub")
    assert sub["values"] == ["system:serviceaccount:${var.namespace}:${each.value.service_account}"]
