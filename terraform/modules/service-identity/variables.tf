variable "role_name_prefix" {
  type        = string
  description = "Prefix of the roles' names (the cluster name), so two clusters in one account do not collide."
}

variable "namespace" {
  type        = string
  description = "Kubernetes namespace of the services' service accounts."
}

variable "oidc_provider_arn" {
  type        = string
  description = "ARN of the cluster's IAM OIDC provider."
}

variable "oidc_issuer_url" {
  type        = string
  description = "Issuer URL of the cluster's service-account tokens (with or without https://)."
}

variable "services" {
  type = map(object({
    service_account    = string
    service_tag        = string
    secret_arns        = list(string)
    send_queue_arns    = list(string)
    consume_queue_arns = list(string)
  }))
  description = "Per workload: its service account, Service cost tag, the secrets it reads, the queues it sends to, and the queues it consumes (receive, delete, change visibility)."

  validation {
    condition     = alltrue([for s in var.services : length(s.secret_arns) > 0 && alltrue([for arn in concat(s.secret_arns, s.send_queue_arns, s.consume_queue_arns) : can(regex("^arn:aws[a-z-]*:(secretsmanager|sqs):", arn))])])
    error_message = "Every secret and queue must be given by its ARN (no wildcards); every service reads at least its connection string."
  }
}

variable "secrets_kms_key_arn" {
  type        = string
  description = "Key encrypting the secrets; the roles may decrypt with it only through Secrets Manager."
}

variable "tags" {
  type        = map(string)
  description = "Tags merged over the provider's default tags on every resource of the module."
  default     = {}
}
