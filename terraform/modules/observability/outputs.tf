output "alarm_topic_arn" {
  description = "SNS topic of the alarms and budget notifications."
  value       = aws_sns_topic.alarms.arn
}

output "log_group_names" {
  description = "Log group name by workload."
  value       = { for name, group in aws_cloudwatch_log_group.service : name => group.name }
}

output "collector_role_arn" {
  description = "IRSA role of the metrics/logs/traces collector."
  value       = aws_iam_role.collector.arn
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.services.dashboard_name
}

output "xray_group_arn" {
  description = "ARN of the X-Ray group of the services' traces."
  value       = aws_xray_group.services.arn
}

output "kms_key_arn" {
  description = "Key usable by CloudWatch Logs (the WAF log group uses it too)."
  value       = aws_kms_key.observability.arn
}
