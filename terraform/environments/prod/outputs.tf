output "account_id" {
  description = "AWS account the stack is applied to."
  value       = data.aws_caller_identity.current.account_id
}

output "cluster_name" {
  description = "EKS cluster (aws eks update-kubeconfig --name …)."
  value       = module.cluster.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = module.cluster.cluster_endpoint
}

output "ecr_repository_urls" {
  description = "ECR repository URL by workload."
  value       = module.registry.repository_urls
}

output "queue_url" {
  description = "URL of the OrderPlaced queue."
  value       = module.messaging.queue_url
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = module.messaging.dlq_url
}

output "service_role_arns" {
  description = "IRSA role ARN by workload, for the service accounts' eks.amazonaws.com/role-arn annotation."
  value       = module.service_identity.role_arns
}

output "connection_secret_arns" {
  description = "Connection-string secret ARN by workload (DATABASE_URL_SECRET)."
  value       = { for key, s in var.services : s.workload => module.secrets.connection_secret_arns[key] }
}

output "queue_url_secret_arn" {
  description = "ARN of the queue-URL secret (SQS_QUEUE_URL_SECRET)."
  value       = module.secrets.queue_url_secret_arn
}

output "waf_web_acl_arn" {
  description = "Web ACL for the ingress annotation alb.ingress.kubernetes.io/wafv2-acl-arn."
  value       = module.edge_security.web_acl_arn
}

output "github_actions_role_arn" {
  description = "Role the deploy workflow assumes (role-to-assume)."
  value       = module.deploy_identity.role_arn
}

output "load_balancer_controller_role_arn" {
  description = "IRSA role of the AWS Load Balancer Controller."
  value       = module.cluster.load_balancer_controller_role_arn
}

output "load_balancer_controller_chart_version" {
  description = "Helm chart version of the AWS Load Balancer Controller."
  value       = module.cluster.load_balancer_controller_chart_version
}

output "load_balancer_controller_values" {
  description = "Helm values of the AWS Load Balancer Controller."
  value       = module.cluster.load_balancer_controller_values
}

output "collector_role_arn" {
  description = "IRSA role of the metrics/logs/traces collector."
  value       = module.observability.collector_role_arn
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms and budgets."
  value       = module.observability.alarm_topic_arn
}

output "log_group_names" {
  description = "Log group by workload."
  value       = module.observability.log_group_names
}

output "database_address" {
  description = "Host name of the RDS instance."
  value       = module.database.address
}

output "database_instance_identifier" {
  description = "Identifier of the RDS instance (restore drills)."
  value       = module.database.instance_identifier
}

output "database_bootstrap_job" {
  description = "The last database bootstrap Job (namespace database-bootstrap)."
  value       = module.database_bootstrap.job_name
}
