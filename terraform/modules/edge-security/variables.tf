variable "name" {
  type        = string
  description = "Name of the web ACL and prefix of its metrics."
}

variable "rate_limit_per_5_minutes" {
  type        = number
  description = "Requests one client IP may make in a 5-minute window before it is blocked."
  default     = 2000

  validation {
    condition     = var.rate_limit_per_5_minutes >= 10
    error_message = "WAF rate-based rules need a limit of at least 10."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Days the WAF log group keeps its events."
  default     = 30
}

variable "log_kms_key_arn" {
  type        = string
  description = "KMS key (usable by CloudWatch Logs) encrypting the WAF log group."
}

variable "tags" {
  type        = map(string)
  description = "Tags merged over the provider's default tags on every resource of the module."
  default     = {}
}
