output "connection_secret_arns" {
  description = "Connection-string secret ARN by service key (DATABASE_URL_SECRET)."
  value       = { for key, s in aws_secretsmanager_secret.connection : key => s.arn }
}

output "queue_url_secret_arn" {
  description = "ARN of the queue-URL secret (SQS_QUEUE_URL_SECRET)."
  value       = aws_secretsmanager_secret.queue_url.arn
}

output "kms_key_arn" {
  description = "Key encrypting the secrets; readers need kms:Decrypt through Secrets Manager."
  value       = aws_kms_key.secrets.arn
}
