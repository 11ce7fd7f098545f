# IAM roles for service accounts: one role per workload, assumable only by that workload's
# service account in the services' namespace, allowed exactly what its code calls:
#   products       reads its connection string
#   orders         reads its connection string and the queue URL; sends OrderPlaced
#   notifications  reads its connection string and the queue URL; consumes the queue; sends
#                  poison events to the DLQ itself (with the reason as attributes) and, for
#                  /admin/dlq, lists the DLQ, replays (sends back to the queue) and purges
#                  (receive + delete)
# and all write X-Ray segments and telemetry. X-Ray has no resource-level permissions, so its
# statement is the only one with "*" resources.

data "aws_region" "current" {}

locals {
  issuer = trimprefix(var.oidc_issuer_url, "https://")
}

data "aws_iam_policy_document" "trust" {
  for_each = var.services

  statement {
    sid     = "ServiceAccountOnly"
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${each.value.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "permissions" {
  for_each = var.services

  statement {
    sid       = "ReadOwnSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = each.value.secret_arns
  }

  statement {
    sid       = "DecryptSecretsThroughSecretsManager"
    actions   = ["kms:Decrypt"]
    resources = [var.secrets_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${data.aws_region.current.region}.amazonaws.com"]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.send_queue_arns) > 0 ? [1] : []
    content {
      sid       = "SendEvents"
      actions   = ["sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
      resources = each.value.send_queue_arns
    }
  }

  dynamic "statement" {
    for_each = length(each.value.consume_queue_arns) > 0 ? [1] : []
    content {
      sid       = "ConsumeEvents"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
      resources = each.value.consume_queue_arns
    }
  }

  statement {
    sid = "WriteTraces"
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

resource "aws_iam_role" "service" {
  for_each = var.services

  name                 = "${var.role_name_prefix}-${each.key}"
  description          = "IRSA role of ${var.namespace}/${each.value.service_account}"
  assume_role_policy   = data.aws_iam_policy_document.trust[each.key].json
  max_session_duration = 3600
  tags                 = merge(var.tags, { Service = each.value.service_tag })
}

resource "aws_iam_role_policy" "service" {
  for_each = var.services

  name   = "${each.key}-least-privilege"
  role   = aws_iam_role.service[each.key].id
  policy = data.aws_iam_policy_document.permissions[each.key].json
}
