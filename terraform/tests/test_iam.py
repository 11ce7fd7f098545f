"""Least privilege of every IAM document Terraform writes for a workload or a pipeline: no
wildcard action anywhere, "*" resources only for APIs without resource-level permissions, SQS
and Secrets Manager always scoped to ARNs, and each service allowed only what its code calls."""

import pytest

from hcl import ENVIRONMENTS, TERRAFORM, data_sources, locals_of, module_calls

# APIs that have no resource-level permissions, so "*" is the only possible resource.
UNSCOPABLE = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
              "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries",
              "ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}

DOCUMENTS = [("service-identity", "permissions"), ("deploy-identity", "deploy"), ("observability", "collector")]


def statements(module, name):
    body = next(d[2] for d in data_sources(TERRAFORM / "modules" / module, "aws_iam_policy_document") if d[1] == name)
    found = list(body.get("statement", []))
    for dynamic in body.get("dynamic", []):
        found.extend(dynamic["statement"]["content"])
    assert found, f"{module}/{name} has no statements"
    return found


@pytest.mark.parametrize("module,name", DOCUMENTS)
def test_no_wildcard_action(module, name):
    for statement in statements(module, name):
        assert statement.get("effect", "Allow") == "Allow"
        assert "not_actions" not in statement and "not_resources" not in statement
        for action in statement["actions"]:
            assert "*" not in action, f"{module}: wildcard action {action}"


@pytest.mark.parametrize("module,name", DOCUMENTS)
def test_star_resources_only_where_the_api_has_no_resource_level_permissions(module, name):
    for statement in statements(module, name):
        resources = statement["resources"]
        if resources == ["*"]:
            assert set(statement["actions"]) <= UNSCOPABLE, f"{module}: {statement['sid']} may be scoped"
        else:
            assert "*" not in str(resources).replace(":log-stream:*", ""), f"{module}: {statement['sid']}"


@pytest.mark.parametrize("module,name", DOCUMENTS)
def test_sqs_and_secrets_manager_scoped_to_arns(module, name):
    for statement in statements(module, name):
        services = {a.split(":")[0] for a in statement["actions"]}
        if services & {"sqs", "secretsmanager"}:
            resources = statement["resources"]
            assert resources != ["*"]
            assert "arn" in str(resources), f"{statement['sid']}: {resources}"


def test_put_metric_data_pinned_to_the_namespace():
    statement = next(s for s in statements("observability", "collector") if s["sid"] == "PublishServiceMetrics")
    assert statement["condition"][0]["variable"] == "cloudwatch:namespace"
    assert statement["condition"][0]["values"] == ["${var.metrics_namespace}"]


def test_kms_decrypt_only_through_secrets_manager():
    statement = next(s for s in statements("service-identity", "permissions") if s["actions"] == ["kms:Decrypt"])
    assert statement["condition"][0]["variable"] == "kms:ViaService"


def test_consumers_may_not_purge_or_reconfigure_queues():
    actions = {a for s in statements("service-identity", "permissions") for a in s["actions"]}
    assert not actions & {"sqs:PurgeQueue", "sqs:SetQueueAttributes", "sqs:CreateQueue", "sqs:DeleteQueue"}
    consume = next(s for s in statements("service-identity", "permissions") if s["sid"] == "ConsumeEvents")
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"} <= set(consume["actions"])
    send = next(s for s in statements("service-identity", "permissions") if s["sid"] == "SendEvents")
    assert "sqs:SendMessage" in send["actions"] and "sqs:ReceiveMessage" not in send["actions"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_service_gets_only_its_own_access(env):
    directory = TERRAFORM / "environments" / env
    access = locals_of(directory)["queue_access"]
    queue, dlq = "${module.messaging.queue_arn}", "${module.messaging.dlq_arn}"
    assert access["products"] == {"send": [], "consume": [], "reads_url": False}
    assert access["orders"] == {"send": [queue], "consume": [], "reads_url": True}
    assert access["notifications"] == {"send": [queue, dlq], "consume": [queue, dlq], "reads_url": True}
    services = module_calls(directory)["service_identity"]["services"]
    # a service's secrets: its own connection string, plus the queue URL where it uses the queue
    assert "[module.secrets.connection_secret_arns[key]]" in services
    assert "local.queue_access[key].reads_url ? [module.secrets.queue_url_secret_arn] : []" in services


def test_deploy_role_trusts_one_repository_and_one_environment_or_branch():
    trust = statements("deploy-identity", "trust")[0]
    conditions = {c["variable"]: c for c in trust["condition"]}
    sub = conditions["${local.github_host}:sub"]
    assert sub["test"] == "StringEquals" and sub["values"] == ["${local.subject}"]
    assert conditions["${local.github_host}:aud"]["values"] == ["sts.amazonaws.com"]
    subject = __import__("hcl").locals_of(TERRAFORM / "modules" / "deploy-identity")["subject"]
    assert "repo:${var.github_repository}:environment:${var.github_environment}" in subject
    assert "repo:${var.github_repository}:ref:refs/heads/${var.github_branch}" in subject
    validation = __import__("hcl").variables(TERRAFORM / "modules" / "deploy-identity")["github_repository"]["validation"][0]
    assert "*" not in validation["condition"]


def test_deploy_role_pushes_images_and_describes_the_cluster_only():
    by_sid = {s["sid"]: s for s in statements("deploy-identity", "deploy")}
    assert set(by_sid) == {"LogInToEcr", "PushServiceImages", "FindTheCluster"}
    assert by_sid["PushServiceImages"]["resources"] == "${var.ecr_repository_arns}"
    assert "ecr:PutImage" in by_sid["PushServiceImages"]["actions"]
    assert by_sid["FindTheCluster"] == {"sid": "FindTheCluster", "actions": ["eks:DescribeCluster"],
                                        "resources": ["${var.cluster_arn}"]}


def test_deploy_access_entry_is_namespace_scoped():
    from hcl import resources
    association = next(r[2] for r in resources(TERRAFORM / "modules" / "deploy-identity")
                       if r[0] == "aws_eks_access_policy_association")
    scope = association["access_scope"][0]
    assert scope == {"type": "namespace", "namespaces": ["${var.deploy_namespace}"]}
    assert association["policy_arn"].endswith("/AmazonEKSEditPolicy")
