# The alarms of the runbooks, all to the alarm topic (and back to OK):
#   dlq-depth     a message is in the DLQ                     AWS/SQS
#   backlog-age   the queue's oldest message is too old       AWS/SQS (consumers stalled or slow)
#   5xx-ratio     too many 5xx from the services behind ALB   AWS/ApplicationELB (once the ALB exists)
#   p99-latency   slow responses behind the ALB               AWS/ApplicationELB (once the ALB exists)
#   breaker-open  orders' circuit to products is open         the services' metrics (wharf namespace)
#   outbox-lag    orders' oldest unpublished event is old     the services' metrics (wharf namespace)

locals {
  # The dimensions the collector publishes the services' Prometheus metrics with (see README).
  service_dimensions = {
    ClusterName = var.cluster_name
    Namespace   = var.namespace
  }
  alarm_actions = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  alarm_name          = "${var.name}-dlq-depth"
  alarm_description   = "Messages are waiting in ${var.dlq_name}: events were dead-lettered. List them with `wharf dlq list`; see docs/operations.md."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.dlq_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = merge(var.tags, { Service = "notification" })
}

resource "aws_cloudwatch_metric_alarm" "backlog_age" {
  alarm_name          = "${var.name}-backlog-age"
  alarm_description   = "The oldest message in ${var.queue_name} is older than ${var.backlog_age_threshold_seconds}s: notifications is not keeping up or not consuming."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = var.queue_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.backlog_age_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = merge(var.tags, { Service = "notification" })
}

resource "aws_cloudwatch_metric_alarm" "error_ratio" {
  count = var.alb_arn_suffix == "" ? 0 : 1

  alarm_name          = "${var.name}-5xx-ratio"
  alarm_description   = "More than ${var.error_ratio_threshold * 100}% of the responses behind the ALB are 5xx."
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.error_ratio_threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags

  metric_query {
    id          = "ratio"
    expression  = "IF(requests > 0, errors / requests, 0)"
    label       = "5xx ratio"
    return_data = true
  }

  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      stat        = "Sum"
      period      = 60
    }
  }

  metric_query {
    id = "requests"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "RequestCount"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      stat        = "Sum"
      period      = 60
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "p99_latency" {
  count = var.alb_arn_suffix == "" ? 0 : 1

  alarm_name          = "${var.name}-p99-latency"
  alarm_description   = "p99 response time of the services behind the ALB is above ${var.p99_latency_threshold_seconds}s."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = { LoadBalancer = var.alb_arn_suffix }
  extended_statistic  = "p99"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.p99_latency_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "breaker_open" {
  alarm_name          = "${var.name}-products-breaker-open"
  alarm_description   = "orders' circuit breaker to products is open (wharf_products_breaker_state = 2): orders answers from its fallback cache or with 503."
  namespace           = var.metrics_namespace
  metric_name         = "wharf_products_breaker_state"
  dimensions          = local.service_dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 2
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = merge(var.tags, { Service = "order" })
}

resource "aws_cloudwatch_metric_alarm" "outbox_lag" {
  alarm_name          = "${var.name}-outbox-lag"
  alarm_description   = "orders' oldest unpublished outbox event is older than ${var.outbox_lag_threshold_seconds}s (wharf_outbox_oldest_pending_age_seconds): the relay cannot publish to SQS."
  namespace           = var.metrics_namespace
  metric_name         = "wharf_outbox_oldest_pending_age_seconds"
  dimensions          = local.service_dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.outbox_lag_threshold_seconds
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = merge(var.tags, { Service = "order" })
}
