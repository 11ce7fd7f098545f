"""Cost allocation: the five tags on every resource (provider default_tags, the nodes' launch
template, the controller's ALBs), activated for Cost Explorer, and the budgets."""

import json
import re

import pytest

from hcl import (ENVIRONMENTS, MODULES, NAMES, ROOTS, SERVICES, TERRAFORM, load_dir, locals_of,
                 module_calls, resources, tfvars, variables)

COST_TAGS = NAMES["aws"]["cost_tags"]


@pytest.mark.parametrize("root", ROOTS, ids=lambda p: p.name)
def test_every_aws_provider_sets_the_five_default_tags(root):
    providers = [p["aws"] for p in load_dir(root)["provider"] if "aws" in p]
    assert providers
    for provider in providers:
        tags = provider["default_tags"][0]["tags"]
        if tags == "${local.cost_tags}":
            tags = locals_of(root)["cost_tags"]
        assert sorted(tags) == sorted(COST_TAGS), f"{root.name}: default_tags {sorted(tags)}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_tags_come_from_variables(env):
    tags = locals_of(TERRAFORM / "environments" / env)["cost_tags"]
    assert tags["Environment"] == "${var.environment}"
    assert tags["Service"] == "shared"
    values = tfvars(env)
    assert values["cost_center"] and values["owner"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_community_modules_get_the_tags_for_what_default_tags_miss(env):
    # default_tags do not reach the instances a managed node group launches; the module's tags do.
    calls = module_calls(TERRAFORM / "environments" / env)
    assert calls["cluster"]["tags"] == "${local.cost_tags}"
    assert calls["network"]["tags"] == "${local.cost_tags}"
    for module in ["network", "cluster", "database"]:
        for name, call in module_calls(TERRAFORM / "modules" / module).items():
            assert call.get("tags") == "${var.tags}", f"{module}: module {name} drops the tags"


def test_per_service_resources_carry_their_service_tag():
    tagged = 0
    for module in MODULES:
        for rtype, name, body in resources(module):
            tags = body.get("tags", "")
            if "Service = " in str(tags):
                tagged += 1
                value = re.search(r"Service = ([^}]+)\}", tags).group(1).strip().strip('"')
                assert value in {"each.value", "each.value.service_tag", "shared",
                                 *[s["cost_service_tag"] for s in SERVICES.values()]}, (module.name, rtype, value)
    assert tagged >= 6


def test_load_balancer_controller_default_tags():
    template = (TERRAFORM / "modules" / "cluster" / "load-balancer-controller.values.yaml.tftpl").read_text()
    assert re.search(r"^defaultTags: \$\{default_tags\}$", template, re.M)
    output = next(b["load_balancer_controller_values"] for b in load_dir(TERRAFORM / "modules" / "cluster")["output"]
                  if "load_balancer_controller_values" in b)
    assert "default_tags = jsonencode(var.alb_default_tags)" in output["value"]
    for env in ENVIRONMENTS:
        assert module_calls(TERRAFORM / "environments" / env)["cluster"]["alb_default_tags"] == "${local.cost_tags}"
    # rendered as the chart will read it
    rendered = template
    for name, value in {"cluster_name": "c", "region": "r", "vpc_id": "v", "role_arn": "a",
                        "default_tags": json.dumps({k: "x" for k in COST_TAGS})}.items():
        rendered = rendered.replace("${" + name + "}", value)
    assert "${" not in rendered
    line = next(l for l in rendered.splitlines() if l.startswith("defaultTags:"))
    assert sorted(json.loads(line.split(":", 1)[1])) == sorted(COST_TAGS)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cost_allocation_tags_activated(env):
    call = module_calls(TERRAFORM / "environments" / env)["cost"]
    assert call["cost_tag_keys"] == "${keys(local.cost_tags)}"
    tag = next(r[2] for r in resources(TERRAFORM / "modules" / "cost", "aws_ce_cost_allocation_tag"))
    assert tag["status"] == "Active"


def test_budgets_notify_at_50_80_100_actual_and_forecasted():
    directory = TERRAFORM / "modules" / "cost"
    assert variables(directory)["notification_thresholds_percent"]["default"] == [50, 80, 100]
    notifications = locals_of(directory)["notifications"]
    assert '["ACTUAL", "FORECASTED"]' in notifications
    budget = next(r[2] for r in resources(directory, "aws_budgets_budget"))
    assert budget["time_unit"] == "MONTHLY"
    content = budget["dynamic"][0]["notification"]["content"][0]
    assert content["subscriber_sns_topic_arns"] == ["${var.sns_topic_arn}"]
    assert content["threshold_type"] == "PERCENTAGE"
    budgets = locals_of(directory)["budgets"]
    assert "user:Environment$${var.environment}" in str(budgets)
    assert "user:Service$${service}" in str(budgets)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_budget_for_every_service_tag(env):
    limits = tfvars(env)["service_monthly_budgets_usd"]
    assert set(limits) == {s["cost_service_tag"] for s in SERVICES.values()} | {"shared"}
    assert all(v > 0 for v in limits.values())
    assert tfvars(env)["environment_monthly_budget_usd"] >= sum(limits.values())
