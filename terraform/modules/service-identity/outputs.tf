output "role_arns" {
  description = "IRSA role ARN by workload name, for the service accounts' eks.amazonaws.com/role-arn annotation."
  value       = { for name, role in aws_iam_role.service : name => role.arn }
}
