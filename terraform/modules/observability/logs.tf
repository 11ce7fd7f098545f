# A log group per service, which the log shipper (Fluent Bit / the CloudWatch agent) writes the
# pods' stdout to.

resource "aws_cloudwatch_log_group" "service" {
  # checkov:skip=CKV_AWS_338:Retention is an environment setting (log_retention_days: 30 days in dev, 90 in prod); request logs older than that are not kept by policy, and traces and metrics keep the history.
  for_each = var.workloads

  name              = "/eks/${var.cluster_name}/${var.namespace}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.observability.arn
  tags              = merge(var.tags, { Service = each.value })
}
