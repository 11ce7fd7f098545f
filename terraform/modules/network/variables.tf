variable "name" {
  type        = string
  description = "Name of the VPC and prefix of its subnets, endpoints and flow log."
}

variable "cluster_name" {
  type        = string
  description = "EKS cluster whose load-balancer controller discovers the subnets by their tags."
}

variable "cidr" {
  type        = string
  description = "IPv4 CIDR of the VPC; carved into three /20 private, three /24 public and three /24 database subnets."
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.cidr)) && tonumber(split("/", var.cidr)[1]) <= 16
    error_message = "cidr must be an IPv4 CIDR of /16 or larger."
  }
}

variable "single_nat_gateway" {
  type        = bool
  description = "One NAT gateway for the whole VPC (cheaper, dev) instead of one per availability zone (prod)."
}

variable "interface_endpoints" {
  type        = list(string)
  description = "AWS services reached through interface endpoints in the private subnets, so pods need no NAT for them."
  default     = ["sqs", "secretsmanager", "ecr.api", "ecr.dkr", "sts", "logs", "monitoring", "xray"]
}

variable "flow_log_retention_days" {
  type        = number
  description = "Days the VPC flow log group keeps its events."
  default     = 30
}

variable "tags" {
  type        = map(string)
  description = "Tags merged over the provider's default tags on every resource of the module."
  default     = {}
}
