variable "region" {
  type        = string
  description = "Region of the state bucket."
  default     = "us-east-1"
}

variable "bucket_prefix" {
  type        = string
  description = "Prefix of the state bucket's name; the account ID and region are appended so the name is globally unique."
  default     = "wharf-terraform-state"
}

variable "noncurrent_version_retention_days" {
  type        = number
  description = "Days an overwritten state version is kept (to roll a state back)."
  default     = 90
}

variable "cost_center" {
  type        = string
  description = "CostCenter tag of every resource."
}

variable "owner" {
  type        = string
  description = "Owner tag (a team or an address)."
}

variable "project" {
  type        = string
  description = "Project tag of every resource."
  default     = "microservices-poc"
}
