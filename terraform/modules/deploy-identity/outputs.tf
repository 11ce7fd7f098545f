output "role_arn" {
  description = "ARN of the deploy role (aws-actions/configure-aws-credentials role-to-assume)."
  value       = aws_iam_role.deploy.arn
}

output "subject" {
  description = "The one OIDC subject the role trusts."
  value       = local.subject
}
