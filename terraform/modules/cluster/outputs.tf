output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = module.eks.cluster_name
}

output "cluster_arn" {
  description = "ARN of the EKS cluster."
  value       = module.eks.cluster_arn
}

output "cluster_endpoint" {
  description = "Endpoint of the Kubernetes API."
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA bundle of the Kubernetes API."
  value       = module.eks.cluster_certificate_authority_data
}

output "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider, trusted by the IRSA roles."
  value       = module.eks.oidc_provider_arn
}

output "oidc_issuer_url" {
  description = "Issuer URL of the cluster's service-account tokens."
  value       = module.eks.cluster_oidc_issuer_url
}

output "node_security_group_id" {
  description = "Security group of the nodes (and so of the pods), allowed into RDS."
  value       = module.eks.node_security_group_id
}

output "load_balancer_controller_role_arn" {
  description = "IRSA role of the AWS Load Balancer Controller."
  value       = module.load_balancer_controller_irsa.arn
}

output "load_balancer_controller_chart_version" {
  description = "Helm chart version of the AWS Load Balancer Controller."
  value       = var.load_balancer_controller_chart_version
}

output "load_balancer_controller_values" {
  description = "Helm values of the AWS Load Balancer Controller (cluster, VPC, IRSA role, default tags)."
  value = templatefile("${path.module}/load-balancer-controller.values.yaml.tftpl", {
    cluster_name = module.eks.cluster_name
    region       = var.region
    vpc_id       = var.vpc_id
    role_arn     = module.load_balancer_controller_irsa.arn
    default_tags = jsonencode(var.alb_default_tags)
  })
}
