variable "cluster_name" {
  type        = string
  description = "Name of the EKS cluster."
}

variable "kubernetes_version" {
  type        = string
  description = "Kubernetes minor version of the control plane and the managed node group."
  default     = "1.33"
}

variable "vpc_id" {
  type        = string
  description = "VPC the cluster runs in."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets for the control-plane ENIs and the nodes."
}

variable "endpoint_public_access_cidrs" {
  type        = list(string)
  description = "CIDRs allowed to reach the public Kubernetes API endpoint; an empty list makes the endpoint private only."
}

variable "node_instance_types" {
  type        = list(string)
  description = "Instance types of the managed node group."
  default     = ["t3.medium"]
}

variable "node_min_size" {
  type        = number
  description = "Fewest nodes in the managed node group."
  default     = 2
}

variable "node_desired_size" {
  type        = number
  description = "Nodes the managed node group starts with (the cluster autoscaler owns it afterwards)."
  default     = 2
}

variable "node_max_size" {
  type        = number
  description = "Most nodes in the managed node group."
  default     = 3
}

variable "admin_principal_arns" {
  type        = list(string)
  description = "IAM principals given cluster-admin through EKS access entries (the people and pipelines that install controllers, CRDs and namespaces)."
  default     = []
}

variable "log_retention_days" {
  type        = number
  description = "Days the control-plane log group keeps its events."
  default     = 90
}

variable "load_balancer_controller_chart_version" {
  type        = string
  description = "Version of the eks/aws-load-balancer-controller Helm chart installed into the cluster."
  default     = "1.13.0"
}

variable "region" {
  type        = string
  description = "AWS region, given to the load-balancer controller."
}

variable "alb_default_tags" {
  type        = map(string)
  description = "Tags the load-balancer controller puts on every ALB, target group and security group it creates (its --default-tags)."
}

variable "tags" {
  type        = map(string)
  description = "Tags merged over the provider's default tags on every resource of the module (and on the nodes' launch template)."
  default     = {}
}
