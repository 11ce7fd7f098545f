# IRSA role of the collector (CloudWatch agent or ADOT) that scrapes the services' /metrics and
# publishes them under the metrics namespace, ships their logs and forwards their traces to X-Ray.
# PutMetricData has no resource-level permissions: a condition pins the namespace instead.

locals {
  issuer = trimprefix(var.oidc_issuer_url, "https://")
}

data "aws_iam_policy_document" "collector_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:sub"
      values   = ["system:serviceaccount:${var.collector_namespace}:${var.collector_service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "collector" {
  statement {
    sid       = "PublishServiceMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metrics_namespace]
    }
  }

  statement {
    sid       = "ShipServiceLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = flatten([for group in aws_cloudwatch_log_group.service : [group.arn, "${group.arn}:log-stream:*"]])
  }

  statement {
    sid = "ForwardTraces"
    actions = [
      "xray:PutTraceSegments",
      "xray:PutTelemetryRecords",
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
      "xray:GetSamplingStatisticSummaries",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role" "collector" {
  name               = "${var.name}-collector"
  description        = "IRSA role of ${var.collector_namespace}/${var.collector_service_account}"
  assume_role_policy = data.aws_iam_policy_document.collector_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "collector" {
  name   = "publish-metrics-logs-traces"
  role   = aws_iam_role.collector.id
  policy = data.aws_iam_policy_document.collector.json
}
