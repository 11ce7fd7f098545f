# The Secrets Manager secrets of the deployment contract: one connection string per service,
# built from the RDS endpoint and that service's own login (never the master user), and the
# queue URL. Encrypted with a customer-managed key; who may read which secret is decided by the
# services' IRSA roles (service-identity module).

data "aws_caller_identity" "current" {}

resource "aws_kms_key" "secrets" {
  description             = "Encrypts the wharf Secrets Manager secrets"
  deletion_window_in_days = 30
  enable_key_rotation     = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersTheKey"
        Effect    = "Allow"
        Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
    ]
  })
  tags = var.tags
}

resource "aws_kms_alias" "secrets" {
  name          = "alias/wharf-secrets"
  target_key_id = aws_kms_key.secrets.key_id
}

locals {
  connection_values = {
    for key, c in var.connection_secrets : key => (
      var.connection_format == "url"
      ? jsonencode({
        url = "postgres://${c.role}:${var.passwords[key]}@${var.database_host}:${var.database_port}/${c.database}?sslmode=require"
      })
      : jsonencode({
        username = c.role
        password = var.passwords[key]
        host     = var.database_host
        port     = var.database_port
        dbname   = c.database
        engine   = "postgres"
      })
    )
  }
}

resource "aws_secretsmanager_secret" "connection" {
  # checkov:skip=CKV2_AWS_57:The value is composed by Terraform from its own random_password; rotating means `terraform apply -replace` of that password, which also re-runs the database bootstrap Job that sets it in PostgreSQL. A rotation Lambda would fight Terraform over the value.
  for_each = var.connection_secrets

  name                    = each.value.name
  description             = "Connection string of ${each.key}'s database (its own login)"
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = var.recovery_window_days
  tags                    = merge(var.tags, { Service = each.value.service_tag })
}

resource "aws_secretsmanager_secret_version" "connection" {
  for_each = aws_secretsmanager_secret.connection

  secret_id     = each.value.id
  secret_string = local.connection_values[each.key]
}

resource "aws_secretsmanager_secret" "queue_url" {
  # checkov:skip=CKV2_AWS_57:The queue URL is not a credential; it changes only if the queue is recreated, and Terraform then writes the new one.
  name                    = var.queue_url_secret_name
  description             = "URL of the OrderPlaced queue"
  kms_key_id              = aws_kms_key.secrets.arn
  recovery_window_in_days = var.recovery_window_days
  tags                    = merge(var.tags, { Service = "shared" })
}

resource "aws_secretsmanager_secret_version" "queue_url" {
  secret_id     = aws_secretsmanager_secret.queue_url.id
  secret_string = var.queue_url
}
