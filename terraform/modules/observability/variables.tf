variable "name" {
  type        = string
  description = "Prefix of the alarms, dashboard, topic, X-Ray group and collector role (e.g. wharf-dev)."
}

variable "cluster_name" {
  type        = string
  description = "EKS cluster the services run in (a dimension of their metrics and part of the log group names)."
}

variable "namespace" {
  type        = string
  description = "Kubernetes namespace of the services."
}

variable "workloads" {
  type        = map(string)
  description = "Workload name (productservice, …) => its Service cost tag; one log group each."
}

variable "log_retention_days" {
  type        = number
  description = "Days the services' log groups keep their events."
  default     = 30
}

variable "metrics_namespace" {
  type        = string
  description = "CloudWatch namespace the collector (CloudWatch agent / ADOT) publishes the services' Prometheus metrics under."
  default     = "wharf"
}

variable "queue_name" {
  type        = string
  description = "The OrderPlaced queue (backlog age alarm, dashboard)."
}

variable "dlq_name" {
  type        = string
  description = "The dead-letter queue (depth alarm, dashboard)."
}

variable "db_instance_identifier" {
  type        = string
  description = "RDS instance shown on the dashboard."
}

variable "alb_arn_suffix" {
  type        = string
  description = "ARN suffix (app/<name>/<id>) of the ingress's ALB, which the load-balancer controller creates after the first apply; empty until then, and the ALB alarms wait for it."
  default     = ""
}

variable "error_ratio_threshold" {
  type        = number
  description = "Share of ALB target responses that are 5xx (0–1) above which the 5xx alarm fires."
  default     = 0.02
}

variable "p99_latency_threshold_seconds" {
  type        = number
  description = "p99 ALB target response time above which the latency alarm fires."
  default     = 1
}

variable "outbox_lag_threshold_seconds" {
  type        = number
  description = "Age of the oldest unpublished outbox event above which the outbox-lag alarm fires."
  default     = 60
}

variable "backlog_age_threshold_seconds" {
  type        = number
  description = "Age of the oldest message in the queue above which the backlog alarm fires."
  default     = 300
}

variable "alarm_emails" {
  type        = list(string)
  description = "E-mail addresses subscribed to the alarm topic (each confirms once)."
  default     = []
}

variable "collector_namespace" {
  type        = string
  description = "Kubernetes namespace of the metrics/traces collector (CloudWatch agent or ADOT)."
}

variable "collector_service_account" {
  type        = string
  description = "Service account of the collector, bound to its IRSA role."
}

variable "oidc_provider_arn" {
  type        = string
  description = "ARN of the cluster's IAM OIDC provider."
}

variable "oidc_issuer_url" {
  type        = string
  description = "Issuer URL of the cluster's service-account tokens."
}

variable "trace_sampling_rate" {
  type        = number
  description = "Share of requests X-Ray samples beyond the one-per-second reservoir."
  default     = 0.05
}

variable "tags" {
  type        = map(string)
  description = "Tags merged over the provider's default tags on every resource of the module."
  default     = {}
}
