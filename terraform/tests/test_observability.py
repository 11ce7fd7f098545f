"""The alarms, the dashboard and X-Ray: every metric they read exists (AWS's, or one the services
register in their Rust source), the dashboard body renders to valid JSON, every alarm notifies."""

import json
import re

from hcl import NAMES, REPO, SERVICES, TERRAFORM, resources

MODULE = TERRAFORM / "modules" / "observability"


def service_metric_names():
    """wharf_<name>[_total] for every metric the services register (prometheus-client adds
    _total to counters; the registry prefix is wharf)."""
    names = set()
    for path in (REPO / "services").rglob("src/**/*.rs"):
        for name in re.findall(r'register\(\s*"([a-z_]+)"', path.read_text()):
            names |= {f"wharf_{name}", f"wharf_{name}_total"}
    assert "wharf_products_breaker_state" in names, "the metric registry moved: update this test"
    return names


def render_dashboard():
    template = (MODULE / "dashboard.json.tftpl").read_text()
    assert "%{" not in template, "keep the template free of directives so that it renders here"
    values = {"region": "us-east-1", "metrics_namespace": NAMES["observability"]["metrics_namespace"],
              "cluster_name": NAMES["aws"]["cluster"], "namespace": NAMES["namespace"],
              "queue_name": NAMES["queue"]["name"], "dlq_name": NAMES["queue"]["dlq"],
              "db_instance": "wharf-dev", "alb_arn_suffix": "app/k8s-microservices/0123456789abcdef"}
    rendered = re.sub(r"\$\{([a-z_]+)\}", lambda m: values[m.group(1)], template)
    used = set(re.findall(r"\$\{([a-z_]+)\}", template))
    passed = set(re.findall(r"^\s+([a-z_]+)\s+=", (MODULE / "dashboard.tf").read_text(), re.M)) - {"dashboard_name", "dashboard_body"}
    assert used == passed, f"template variables {used} vs passed {passed}"
    return json.loads(rendered)


def alarms():
    return {name: body for rtype, name, body in resources(MODULE, "aws_cloudwatch_metric_alarm")}


def test_dashboard_renders_to_json_with_widgets_on_a_grid():
    body = render_dashboard()
    widgets = body["widgets"]
    assert len(widgets) >= 8
    for widget in widgets:
        assert widget["x"] + widget["width"] <= 24


def test_dashboard_and_alarms_read_only_metrics_the_services_register():
    known = service_metric_names()
    text = (MODULE / "dashboard.json.tftpl").read_text() + (MODULE / "alarms.tf").read_text()
    used = set(re.findall(r"\bwharf_[a-z_]+", text))
    assert used, "no service metric on the dashboard"
    assert used <= known, f"not registered by any service: {sorted(used - known)}"


def test_dashboard_shows_queue_dlq_alb_and_rds():
    metrics = json.dumps(render_dashboard())
    for namespace in ["AWS/SQS", "AWS/ApplicationELB", "AWS/RDS", NAMES["observability"]["metrics_namespace"]]:
        assert f'"{namespace}"' in metrics
    assert NAMES["queue"]["dlq"] in metrics and NAMES["queue"]["name"] in metrics


def test_the_alarms_of_the_issue():
    found = alarms()
    assert set(found) == {"dlq_depth", "backlog_age", "error_ratio", "p99_latency", "breaker_open", "outbox_lag"}
    dlq = found["dlq_depth"]
    assert (dlq["namespace"], dlq["metric_name"], dlq["dimensions"], dlq["threshold"], dlq["comparison_operator"]) == \
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": "${var.dlq_name}"}, 0, "GreaterThanThreshold")
    assert found["backlog_age"]["metric_name"] == "ApproximateAgeOfOldestMessage"
    assert found["p99_latency"]["extended_statistic"] == "p99"
    assert found["p99_latency"]["metric_name"] == "TargetResponseTime"
    ratio = found["error_ratio"]["metric_query"]
    assert {q["metric"][0]["metric_name"] for q in ratio if "metric" in q} == {"HTTPCode_Target_5XX_Count", "RequestCount"}
    breaker = found["breaker_open"]
    assert breaker["metric_name"] == "wharf_products_breaker_state" and breaker["threshold"] == 2
    assert breaker["namespace"] == "${var.metrics_namespace}"
    assert found["outbox_lag"]["metric_name"] == "wharf_outbox_oldest_pending_age_seconds"
    for name, alarm in found.items():
        assert alarm["alarm_actions"] == "${local.alarm_actions}", name
        assert alarm["ok_actions"] == "${local.alarm_actions}", name
        assert alarm["treat_missing_data"] == "notBreaching", name


def test_breaker_threshold_is_the_open_state_the_service_reports():
    source = (REPO / "services" / "orders" / "src" / "product_gateway" / "metrics.rs").read_text()
    assert "0 closed, 1 half-open, 2 open" in source


def test_log_groups_per_service_with_retention_and_xray():
    group = next(r[2] for r in resources(MODULE, "aws_cloudwatch_log_group"))
    assert group["for_each"] == "${var.workloads}"
    assert group["retention_in_days"] == "${var.log_retention_days}"
    kinds = {r[0] for r in resources(MODULE)}
    assert {"aws_xray_sampling_rule", "aws_xray_group", "aws_sns_topic", "aws_cloudwatch_dashboard"} <= kinds
    group = next(r[2] for r in resources(MODULE, "aws_xray_group"))
    for health_name in [s["health_name"] for s in SERVICES.values()]:
        assert f'service(\\"{health_name}\\")' in group["filter_expression"] or \
            f'service("{health_name}")' in group["filter_expression"]
