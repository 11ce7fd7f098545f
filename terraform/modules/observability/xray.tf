# X-Ray: a sampling rule for the services (health probes are never sampled) and a group that
# gathers their traces.

resource "aws_xray_sampling_rule" "health" {
  rule_name      = "${var.name}-health"
  priority       = 100
  version        = 1
  reservoir_size = 0
  fixed_rate     = 0
  url_path       = "/health*"
  host           = "*"
  http_method    = "GET"
  service_type   = "*"
  service_name   = "*"
  resource_arn   = "*"
  tags           = var.tags
}

resource "aws_xray_sampling_rule" "services" {
  rule_name      = "${var.name}-services"
  priority       = 200
  version        = 1
  reservoir_size = 1
  fixed_rate     = var.trace_sampling_rate
  url_path       = "*"
  host           = "*"
  http_method    = "*"
  service_type   = "*"
  service_name   = "*"
  resource_arn   = "*"
  tags           = var.tags
}

resource "aws_xray_group" "services" {
  group_name        = var.name
  filter_expression = "service(\"ProductService\") OR service(\"OrderService\") OR service(\"NotificationService\")"

  insights_configuration {
    insights_enabled      = true
    notifications_enabled = false
  }

  tags = var.tags
}
