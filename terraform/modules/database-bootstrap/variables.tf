variable "namespace" {
  type        = string
  description = "Kubernetes namespace (created here) the bootstrap Job runs in; separate from the services' so their service accounts never see the master credentials."
  default     = "database-bootstrap"
}

variable "host" {
  type        = string
  description = "Host name of the PostgreSQL instance."
}

variable "port" {
  type        = number
  description = "Port of the PostgreSQL instance."
}

variable "master_user_secret_arn" {
  type        = string
  description = "RDS-managed secret with the master username and password."
}

variable "databases" {
  type = map(object({
    database = string
    role     = string
  }))
  description = "Per service key: the database to create and the login role that owns it."
}

variable "passwords" {
  type        = map(string)
  description = "Per service key: the password of its login role."
  sensitive   = true
}

variable "image" {
  type        = string
  description = "Image with psql that runs the bootstrap script (its major version at least the server's)."
  default     = "public.ecr.aws/docker/library/postgres:17.6-alpine"
}
