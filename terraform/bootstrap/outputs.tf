output "state_bucket" {
  description = "Bucket of the environments' state: terraform init -backend-config=\"bucket=<this>\"."
  value       = aws_s3_bucket.state.bucket
}

output "state_kms_key_arn" {
  description = "Key encrypting the state objects."
  value       = aws_kms_key.state.arn
}
