# State in the bootstrap stack's bucket, locked with S3's native lock file. The bucket is
# account-specific: terraform init -backend-config="bucket=<terraform output -raw state_bucket>".
terraform {
  backend "s3" {
    key          = "wharf/prod/terraform.tfstate"
    region       = "us-east-1"
    encrypt      = true
    use_lockfile = true
  }
}
