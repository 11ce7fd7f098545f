output "address" {
  description = "Host name of the instance."
  value       = module.postgres.db_instance_address
}

output "port" {
  description = "Port of the instance."
  value       = module.postgres.db_instance_port
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret (managed by RDS) holding the master credentials; only the bootstrap Job reads it."
  value       = module.postgres.db_instance_master_user_secret_arn
}

output "instance_identifier" {
  description = "Identifier of the instance, for the RDS alarms and the restore drill."
  value       = module.postgres.db_instance_identifier
}

output "service_passwords" {
  description = "Per service key: the password of its login role."
  sensitive   = true
  value       = { for key, password in random_password.service : key => password.result }
}

output "kms_key_arn" {
  description = "Key encrypting the instance and its master secret."
  value       = aws_kms_key.rds.arn
}
