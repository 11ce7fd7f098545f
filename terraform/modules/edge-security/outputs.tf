output "web_acl_arn" {
  description = "ARN of the web ACL, for the ingress annotation alb.ingress.kubernetes.io/wafv2-acl-arn."
  value       = aws_wafv2_web_acl.edge.arn
}

output "web_acl_name" {
  description = "Name of the web ACL."
  value       = aws_wafv2_web_acl.edge.name
}
