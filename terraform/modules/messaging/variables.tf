variable "queue_name" {
  type        = string
  description = "Name of the queue OrderPlaced events travel on (orders sends, notifications consumes)."
}

variable "dlq_name" {
  type        = string
  description = "Name of the dead-letter queue the queue redrives to."
}

variable "max_receive_count" {
  type        = number
  description = "Receives after which a message moves to the DLQ; equals the services' BUS_MAX_ATTEMPTS."
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000 (SQS's limit, and BUS_MAX_ATTEMPTS's)."
  }
}

variable "visibility_timeout_seconds" {
  type        = number
  description = "Visibility timeout of a received message: longer than one send (the consumer also extends it while a delivery is in flight)."
  default     = 60
}

variable "receive_wait_time_seconds" {
  type        = number
  description = "Long-polling wait of a ReceiveMessage call."
  default     = 20
}

variable "message_retention_seconds" {
  type        = number
  description = "How long the queue keeps an unconsumed message (4 days)."
  default     = 345600
}

variable "dlq_message_retention_seconds" {
  type        = number
  description = "How long the DLQ keeps a dead-lettered message (14 days, the SQS maximum), longer than the queue's."
  default     = 1209600
}

variable "tags" {
  type        = map(string)
  description = "Tags merged over the provider's default tags on every resource of the module."
  default     = {}
}
