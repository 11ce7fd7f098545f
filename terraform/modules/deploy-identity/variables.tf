variable "role_name" {
  type        = string
  description = "Name of the deploy role GitHub Actions assumes."
}

variable "github_repository" {
  type        = string
  description = "The one repository (owner/name, e.g. org/wharf) whose workflows may assume the role."

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name, without wildcards."
  }
}

variable "github_environment" {
  type        = string
  description = "GitHub environment whose jobs may assume the role (subject repo:<repository>:environment:<name>); empty to trust a branch instead."
  default     = ""
}

variable "github_branch" {
  type        = string
  description = "Branch whose workflow runs may assume the role when no environment is given (subject repo:<repository>:ref:refs/heads/<branch>)."
  default     = "main"
}

variable "create_oidc_provider" {
  type        = bool
  description = "Create the account's token.actions.githubusercontent.com OIDC provider; false when another stack already owns it (one per account)."
  default     = true
}

variable "ecr_repository_arns" {
  type        = list(string)
  description = "ECR repositories the role may push to."
}

variable "cluster_name" {
  type        = string
  description = "EKS cluster the role deploys to."
}

variable "cluster_arn" {
  type        = string
  description = "ARN of that cluster (eks:DescribeCluster)."
}

variable "deploy_namespace" {
  type        = string
  description = "Kubernetes namespace the role may edit (through an EKS access entry)."
}

variable "tags" {
  type        = map(string)
  description = "Tags merged over the provider's default tags on every resource of the module."
  default     = {}
}
