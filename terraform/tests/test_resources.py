"""What the resources configure: the cluster, the registry, the database, the queues, the WAF."""

import json
import re

import pytest

from hcl import ENVIRONMENTS, TERRAFORM, module_calls, named, resources, tf_files, tfvars, variables


def resource(module, rtype, name):
    return named([{r[0]: {r[1]: r[2]}} for r in resources(TERRAFORM / "modules" / module)], rtype, name)


def community(module, name):
    return module_calls(TERRAFORM / "modules" / module)[name]


def test_network_three_azs_private_subnets_and_endpoints():
    vpc = community("network", "vpc")
    assert "slice(data.aws_availability_zones.available.names, 0, 3)" in str(
        __import__("hcl").locals_of(TERRAFORM / "modules" / "network")["azs"])
    for kind in ["private_subnets", "public_subnets", "database_subnets"]:
        assert "range(3)" in vpc[kind]
    assert vpc["public_subnet_tags"]["kubernetes.io/role/elb"] == "1"
    assert vpc["private_subnet_tags"]["kubernetes.io/role/internal-elb"] == "1"
    endpoints = variables(TERRAFORM / "modules" / "network")["interface_endpoints"]["default"]
    assert {"sqs", "secretsmanager", "ecr.api", "ecr.dkr", "sts", "logs"} <= set(endpoints)
    assert 'service_type = "Gateway"' in community("network", "endpoints")["endpoints"]


def test_cluster_logging_addons_irsa_and_node_group():
    eks = community("cluster", "eks")
    assert eks["name"] == "${var.cluster_name}"
    assert eks["enabled_log_types"] == ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    assert eks["enable_irsa"] is True
    assert eks["authentication_mode"] == "API"
    assert set(eks["addons"]) == {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent"}
    group = eks["eks_managed_node_groups"]["default"]
    assert group["instance_types"] == "${var.node_instance_types}"
    assert group["metadata_options"]["http_tokens"] == "required"
    for env in ENVIRONMENTS:
        values = tfvars(env)
        assert values["node_instance_types"] == ["t3.medium"]
        assert 2 <= values["node_min_size"] <= values["node_desired_size"] <= values["node_max_size"]
    assert tfvars("dev")["node_max_size"] == 3
    irsa = community("cluster", "load_balancer_controller_irsa")
    assert irsa["attach_load_balancer_controller_policy"] is True
    assert irsa["oidc_providers"]["cluster"]["namespace_service_accounts"] == ["kube-system:aws-load-balancer-controller"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", variables(TERRAFORM / "modules" / "cluster")
                        ["load_balancer_controller_chart_version"]["default"])


def test_registry_scans_on_push_immutable_lifecycle():
    repo = resource("registry", "aws_ecr_repository", "service")
    assert repo["image_tag_mutability"] == "IMMUTABLE"
    assert repo["image_scanning_configuration"][0]["scan_on_push"] is True
    assert repo["encryption_configuration"][0]["encryption_type"] == "KMS"
    policy = resource("registry", "aws_ecr_lifecycle_policy", "service")
    assert policy["for_each"] == "${aws_ecr_repository.service}"
    assert 'tagStatus = "untagged"' in policy["policy"] and "imageCountMoreThan" in policy["policy"]


def test_database_encrypted_private_backed_up():
    rds = community("database", "postgres")
    assert rds["engine"] == "postgres"
    assert rds["storage_encrypted"] is True
    assert rds["manage_master_user_password"] is True
    assert rds["publicly_accessible"] is False
    assert rds["backup_retention_period"] == "${var.backup_retention_days}"
    assert rds["multi_az"] == "${var.multi_az}" and rds["deletion_protection"] == "${var.deletion_protection}"
    assert rds["skip_final_snapshot"] is False
    assert {"name": "rds.force_ssl", "value": "1"} in rds["parameters"]
    validation = variables(TERRAFORM / "modules" / "database")["backup_retention_days"]["validation"][0]
    assert "var.backup_retention_days >= 7" in validation["condition"]
    assert tfvars("prod")["db_multi_az"] is True and tfvars("prod")["db_deletion_protection"] is True
    assert tfvars("prod").get("db_backup_retention_days", 7) >= 7
    ingress = resource("database", "aws_vpc_security_group_ingress_rule", "postgres")
    assert "referenced_security_group_id" in ingress and "cidr_ipv4" not in ingress


def test_queue_sse_long_polling_visibility_and_dlq_retention():
    messaging = TERRAFORM / "modules" / "messaging"
    queue = resource("messaging", "aws_sqs_queue", "queue")
    dlq = resource("messaging", "aws_sqs_queue", "dlq")
    defaults = {n: s.get("default") for n, s in variables(messaging).items()}
    for q in (queue, dlq):
        assert q["sqs_managed_sse_enabled"] is True
    assert defaults["receive_wait_time_seconds"] == 20
    # longer than a send (the services' default send delays are well under a second)
    assert defaults["visibility_timeout_seconds"] >= 30
    assert defaults["dlq_message_retention_seconds"] > defaults["message_retention_seconds"]
    assert dlq["message_retention_seconds"] == "${var.dlq_message_retention_seconds}"
    allow = resource("messaging", "aws_sqs_queue_redrive_allow_policy", "dlq")
    assert "sourceQueueArns = [aws_sqs_queue.queue.arn]" in allow["redrive_allow_policy"]


def test_waf_rules_and_no_association():
    acl = resource("edge-security", "aws_wafv2_web_acl", "edge")
    assert acl["scope"] == "REGIONAL"
    rate = acl["rule"][0]["statement"][0]["rate_based_statement"][0]
    assert rate == {"limit": "${var.rate_limit_per_5_minutes}", "evaluation_window_sec": 300, "aggregate_key_type": "IP"}
    assert "block" in acl["rule"][0]["action"][0]
    assert variables(TERRAFORM / "modules" / "edge-security")["rate_limit_per_5_minutes"]["default"] == 2000
    groups = __import__("hcl").locals_of(TERRAFORM / "modules" / "edge-security")["managed_rule_groups"]
    assert [g["name"] for g in groups] == ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet",
                                          "AWSManagedRulesSQLiRuleSet"]
    for path in tf_files():
        assert "aws_wafv2_web_acl_association" not in path.read_text(), f"{path}: the controller owns the association"


def test_secrets_value_shapes_the_services_accept():
    values = __import__("hcl").locals_of(TERRAFORM / "modules" / "secrets")["connection_values"]
    assert "url = " in values and "?sslmode=require" in values
    for key in ["username", "password", "host", "port", "dbname"]:
        assert f"{key} = " in values
    version = resource("secrets", "aws_secretsmanager_secret_version", "connection")
    assert version["secret_string"] == "${local.connection_values[each.key]}"
    # built from the service's own role, never the master user
    assert "master" not in values
