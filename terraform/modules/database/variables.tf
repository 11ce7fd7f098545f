variable "identifier" {
  type        = string
  description = "Identifier of the RDS instance."
}

variable "databases" {
  type = map(object({
    database = string
    role     = string
  }))
  description = "Per-service databases: service key => its database and the login role that owns it (and only it)."
}

variable "engine_version" {
  type        = string
  description = "PostgreSQL engine version."
  default     = "17.6"
}

variable "instance_class" {
  type        = string
  description = "RDS instance class."
  default     = "db.t4g.micro"
}

variable "allocated_storage_gb" {
  type        = number
  description = "Initial storage in GiB (gp3); storage autoscaling may grow it to max_allocated_storage_gb."
  default     = 20
}

variable "max_allocated_storage_gb" {
  type        = number
  description = "Ceiling of storage autoscaling in GiB."
  default     = 100
}

variable "multi_az" {
  type        = bool
  description = "Standby in a second availability zone (prod)."
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to delete the instance (prod)."
}

variable "backup_retention_days" {
  type        = number
  description = "Days of automated backups and point-in-time recovery."
  default     = 7

  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 7 and 35: a restore needs at least a week of PITR."
  }
}

variable "db_subnet_group_name" {
  type        = string
  description = "DB subnet group over the isolated database subnets."
}

variable "vpc_id" {
  type        = string
  description = "VPC of the instance's security group."
}

variable "client_security_group_ids" {
  type        = list(string)
  description = "Security groups allowed to connect on 5432 (the EKS nodes, hence the pods)."
}

variable "log_retention_days" {
  type        = number
  description = "Days the PostgreSQL log group keeps its events."
  default     = 30
}

variable "tags" {
  type        = map(string)
  description = "Tags merged over the provider's default tags on every resource of the module."
  default     = {}
}
