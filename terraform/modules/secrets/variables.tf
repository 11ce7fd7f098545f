variable "connection_secrets" {
  type = map(object({
    name        = string
    service_tag = string
    database    = string
    role        = string
  }))
  description = "Per service key: the connection-string secret's name, the Service cost tag, the database and the login role."
}

variable "passwords" {
  type        = map(string)
  description = "Per service key: the password of its login role."
  sensitive   = true
}

variable "queue_url_secret_name" {
  type        = string
  description = "Name of the secret holding the queue URL (SQS_QUEUE_URL_SECRET)."
}

variable "queue_url" {
  type        = string
  description = "URL of the OrderPlaced queue, stored in the queue-URL secret."
}

variable "database_host" {
  type        = string
  description = "Host name of the PostgreSQL instance."
}

variable "database_port" {
  type        = number
  description = "Port of the PostgreSQL instance."
}

variable "connection_format" {
  type        = string
  description = "Shape of a connection-string secret's value: \"url\" ({\"url\": \"postgres://…?sslmode=require\"}) or \"rds\" ({\"username\",\"password\",\"host\",\"port\",\"dbname\"}); the services accept both."
  default     = "url"

  validation {
    condition     = contains(["url", "rds"], var.connection_format)
    error_message = "connection_format must be \"url\" or \"rds\"."
  }
}

variable "recovery_window_days" {
  type        = number
  description = "Days a deleted secret can still be restored."
  default     = 7
}

variable "tags" {
  type        = map(string)
  description = "Tags merged over the provider's default tags on every resource of the module."
  default     = {}
}
