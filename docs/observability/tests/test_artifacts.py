"""The dashboards, alert rules and runbooks agree with each other, with the Terraform module and
with docs/deployment.toml. (promtool checks the rules' syntax and behaviour; test_live_metrics.py
checks every series name against the running services.)"""

import json

from conftest import NAMES, REPO, TERRAFORM_DASHBOARD, dashboard_metrics, render


def panel_titles_grafana(grafana):
    return [panel["title"] for panel in grafana["panels"]]


def test_grafana_dashboard_is_a_dashboard_with_a_prometheus_query_in_every_panel(grafana):
    assert grafana["uid"] and grafana["title"]
    assert grafana["panels"], "no panels"
    for panel in grafana["panels"]:
        assert panel["targets"], f"panel {panel['title']!r} queries nothing"
        for target in panel["targets"]:
            assert target["expr"].strip(), f"empty query in {panel['title']!r}"
            assert target["datasource"]["type"] == "prometheus"
    ids = [panel["id"] for panel in grafana["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"


def test_both_dashboards_show_the_same_service_panels(grafana, cloudwatch_template):
    body = render(cloudwatch_template)
    cloudwatch_titles = {w["properties"].get("title") for w in body["widgets"]}
    missing = [title for title in panel_titles_grafana(grafana) if title not in cloudwatch_titles]
    assert not missing, f"in Grafana but not in CloudWatch: {missing}"


def test_the_issue_panels_are_all_there(grafana):
    text = json.dumps(grafana)
    for needed in ["wharf_http_requests_total", "wharf_http_request_duration_seconds_bucket",
                   "wharf_products_breaker_state", "wharf_outbox_oldest_pending_age_seconds",
                   "wharf_notifications_oldest_unsent_age_seconds", "wharf_bus_dlq_depth",
                   "wharf_order_to_email_seconds_bucket", "wharf_actor_restarts_total"]:
        assert needed in text, f"no panel reads {needed}"


def test_cloudwatch_body_keeps_every_widget_of_the_terraform_module(cloudwatch_template):
    # Terraform renders either file with the same variables, so the documented body can replace
    # the module's without losing a widget.
    ours = render(cloudwatch_template)["widgets"]
    theirs = render(TERRAFORM_DASHBOARD.read_text())["widgets"]
    ours_by_title = {json.dumps(w["properties"], sort_keys=True) for w in ours}
    for widget in theirs:
        assert json.dumps(widget["properties"], sort_keys=True) in ours_by_title, (
            f"Terraform widget {widget['properties'].get('title')!r} is missing or differs")


def test_cloudwatch_reads_service_metrics_in_the_agreed_namespace_and_dimensions(cloudwatch_template):
    body = render(cloudwatch_template)
    namespace = NAMES["observability"]["metrics_namespace"]
    for widget in body["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            if isinstance(row[0], dict):
                expression = row[0]["expression"]
                if "wharf_" in expression:
                    assert expression.startswith(f"SEARCH('{{{namespace},ClusterName,Namespace"), expression
                continue
            if any(str(item).startswith("wharf_") for item in row):
                assert row[0] == namespace, row
                assert row[2:6] == ["ClusterName", NAMES["aws"]["cluster"], "Namespace", NAMES["namespace"]], row
            else:
                assert row[0].startswith("AWS/"), row


def test_cloudwatch_names_the_deployment_queue_and_dlq(cloudwatch_template):
    text = json.dumps(render(cloudwatch_template))
    assert f'"{NAMES["queue"]["name"]}"' in text and f'"{NAMES["queue"]["dlq"]}"' in text


def test_every_alert_has_a_severity_summary_and_an_existing_runbook(alerts):
    rules = [rule for group in alerts["groups"] for rule in group["rules"]]
    names = [rule["alert"] for rule in rules]
    for wanted in ["WharfHigh5xxRatio", "WharfHighP99Latency", "WharfProductsBreakerOpen", "WharfOutboxLag",
                   "WharfNotificationBacklogAge", "WharfDeadLetters", "WharfActorRestartStorm"]:
        assert wanted in names
    for rule in rules:
        assert rule["labels"]["severity"] in {"page", "warn"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        runbook = REPO / rule["annotations"]["runbook_url"]
        assert runbook.is_file(), f"{rule['alert']}: {runbook} does not exist"
        text = runbook.read_text()
        for section in ["**Meaning.**", "**Confirm.**", "**Mitigate.**", "**Verify.**"]:
            assert section in text, f"{runbook.name} lacks {section}"


def test_every_runbook_belongs_to_an_alert(alerts):
    linked = {rule["annotations"]["runbook_url"] for group in alerts["groups"] for rule in group["rules"]}
    for runbook in (REPO / "docs" / "runbooks").glob("*.md"):
        assert str(runbook.relative_to(REPO)) in linked, f"{runbook.name} is linked by no alert"


def test_series_names_are_the_services_prefix(alerts):
    assert dashboard_metrics(), "no wharf_* series found in the artifacts"
    for name in dashboard_metrics():
        assert name == name.lower() and not name.endswith("_"), name
