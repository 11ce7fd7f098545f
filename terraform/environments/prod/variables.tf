# The defaults are the names of the deployment contract (docs/deployment.toml); the tests check
# them against it. What differs between environments is in terraform.tfvars.

variable "region" {
  type        = string
  description = "AWS region."
  default     = "us-east-1"
}

variable "environment" {
  type        = string
  description = "Environment name: the Environment tag, and part of resource names."
}

variable "cluster_name" {
  type        = string
  description = "Name of the EKS cluster."
  default     = "eks-microservices-poc"
}

variable "namespace" {
  type        = string
  description = "Kubernetes namespace of the three services."
  default     = "microservices"
}

variable "services" {
  type = map(object({
    workload          = string
    service_tag       = string
    database          = string
    connection_secret = string
  }))
  description = "The services by key: workload (Deployment, ServiceAccount, ECR repository, database role), Service cost tag, database and connection-string secret name."
  default = {
    products = {
      workload          = "productservice"
      service_tag       = "product"
      database          = "productdb"
      connection_secret = "microservices-poc/ProductService/ConnectionString"
    }
    orders = {
      workload          = "orderservice"
      service_tag       = "order"
      database          = "orderdb"
      connection_secret = "microservices-poc/OrderService/ConnectionString"
    }
    notifications = {
      workload          = "notificationservice"
      service_tag       = "notification"
      database          = "notificationdb"
      connection_secret = "microservices-poc/NotificationService/ConnectionString"
    }
  }
}

variable "queue_name" {
  type        = string
  description = "The OrderPlaced queue."
  default     = "notification-queue"
}

variable "dlq_name" {
  type        = string
  description = "Its dead-letter queue."
  default     = "notification-queue-dlq"
}

variable "max_receive_count" {
  type        = number
  description = "Receives before a message is dead-lettered; must equal the services' BUS_MAX_ATTEMPTS."
  default     = 5
}

variable "queue_url_secret" {
  type        = string
  description = "Name of the secret holding the queue URL."
  default     = "microservices-poc/SQS/NotificationQueueUrl"
}

variable "ecr_name_prefix" {
  type        = string
  description = "Optional prefix of the ECR repository names, e.g. \"microservices-poc/\"."
  default     = ""
}

variable "vpc_cidr" {
  type        = string
  description = "IPv4 CIDR of the VPC."
  default     = "10.0.0.0/16"
}

variable "single_nat_gateway" {
  type        = bool
  description = "One NAT gateway instead of one per AZ."
}

variable "api_public_access_cidrs" {
  type        = list(string)
  description = "CIDRs allowed to reach the public Kubernetes API endpoint; empty for a private endpoint only."
}

variable "node_instance_types" {
  type        = list(string)
  description = "Instance types of the managed node group."
  default     = ["t3.medium"]
}

variable "node_min_size" {
  type        = number
  description = "Fewest nodes."
  default     = 2
}

variable "node_desired_size" {
  type        = number
  description = "Nodes at creation."
  default     = 2
}

variable "node_max_size" {
  type        = number
  description = "Most nodes."
  default     = 3
}

variable "cluster_admin_arns" {
  type        = list(string)
  description = "IAM principals with cluster-admin access entries, besides whoever applies this stack."
  default     = []
}

variable "db_instance_class" {
  type        = string
  description = "RDS instance class."
}

variable "db_multi_az" {
  type        = bool
  description = "RDS Multi-AZ standby."
}

variable "db_deletion_protection" {
  type        = bool
  description = "RDS deletion protection."
}

variable "db_backup_retention_days" {
  type        = number
  description = "Days of RDS automated backups (point-in-time recovery), at least 7."
  default     = 7
}

variable "log_retention_days" {
  type        = number
  description = "Days the services' and the cluster's log groups keep their events."
  default     = 30
}

variable "alb_arn_suffix" {
  type        = string
  description = "ARN suffix of the ingress's ALB once the controller created it (enables the ALB alarms); empty on the first apply."
  default     = ""
}

variable "alarm_emails" {
  type        = list(string)
  description = "E-mail addresses for alarms and budget notifications."
  default     = []
}

variable "collector_namespace" {
  type        = string
  description = "Kubernetes namespace of the metrics/traces collector."
  default     = "amazon-cloudwatch"
}

variable "collector_service_account" {
  type        = string
  description = "Service account of the metrics/traces collector."
  default     = "cloudwatch-agent"
}

variable "metrics_namespace" {
  type        = string
  description = "CloudWatch namespace of the services' metrics."
  default     = "wharf"
}

variable "waf_rate_limit_per_5_minutes" {
  type        = number
  description = "Requests per client IP per 5 minutes before the WAF blocks it."
  default     = 2000
}

variable "github_repository" {
  type        = string
  description = "The repository (owner/name) whose deploy workflow may assume the deploy role."
}

variable "github_environment" {
  type        = string
  description = "GitHub environment of the deploy jobs (empty to trust the branch instead)."
  default     = ""
}

variable "github_branch" {
  type        = string
  description = "Branch trusted when no GitHub environment is given."
  default     = "main"
}

variable "create_github_oidc_provider" {
  type        = bool
  description = "Create the account's GitHub OIDC provider (false if another stack in the account owns it)."
  default     = true
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

variable "activate_cost_allocation_tags" {
  type        = bool
  description = "Activate the five cost-allocation tags in the billing account (once per payer account)."
  default     = true
}

variable "environment_monthly_budget_usd" {
  type        = number
  description = "Monthly budget of the environment in USD."
}

variable "service_monthly_budgets_usd" {
  type        = map(number)
  description = "Monthly budget in USD per Service tag value (product, order, notification, shared)."
}
