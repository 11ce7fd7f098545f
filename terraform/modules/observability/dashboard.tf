# The dashboard whose body is dashboard.json.tftpl (owned with the observability work; see README).

resource "aws_cloudwatch_dashboard" "services" {
  dashboard_name = var.name
  dashboard_body = templatefile("${path.module}/dashboard.json.tftpl", {
    region            = data.aws_region.current.region
    metrics_namespace = var.metrics_namespace
    cluster_name      = var.cluster_name
    namespace         = var.namespace
    queue_name        = var.queue_name
    dlq_name          = var.dlq_name
    db_instance       = var.db_instance_identifier
    alb_arn_suffix    = var.alb_arn_suffix
  })
}
