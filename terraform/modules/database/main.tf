# One RDS PostgreSQL instance holding a database per service. The master password is managed by
# RDS in Secrets Manager and never leaves it except to the bootstrap Job; each service logs in as
# its own role, which owns its database and cannot connect to the others' (see the
# database-bootstrap module). Encrypted with a customer-managed key, private, TLS enforced,
# backed up with point-in-time recovery.

data "aws_caller_identity" "current" {}

resource "aws_kms_key" "rds" {
  description             = "Encrypts the ${var.identifier} storage, snapshots, Performance Insights and master secret"
  deletion_window_in_days = 30
  enable_key_rotation     = true
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministersTheKey"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
  tags = var.tags
}

resource "aws_security_group" "postgres" {
  # checkov:skip=CKV2_AWS_5:Attached to the RDS instance through the rds module (vpc_security_group_ids), which checkov does not expand offline.
  name_prefix = "${var.identifier}-"
  description = "PostgreSQL from the EKS nodes only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = var.identifier })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "postgres" {
  for_each = toset(var.client_security_group_ids)

  security_group_id            = aws_security_group.postgres.id
  description                  = "PostgreSQL from ${each.value}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

module "postgres" {
  # checkov:skip=CKV_TF_1:A registry module pinned by its version constraint, as the registry resolves it; a commit hash would need a git source and lose that.
  source  = "terraform-aws-modules/rds/aws"
  version = "~> 7.0"

  identifier = var.identifier

  engine               = "postgres"
  engine_version       = var.engine_version
  family               = "postgres${split(".", var.engine_version)[0]}"
  major_engine_version = split(".", var.engine_version)[0]
  instance_class       = var.instance_class

  storage_type          = "gp3"
  allocated_storage     = var.allocated_storage_gb
  max_allocated_storage = var.max_allocated_storage_gb
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.rds.arn

  # The master user only bootstraps the per-service roles; its password lives in Secrets Manager,
  # rotated by RDS.
  username                      = "wharf_admin"
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.rds.arn
  port                          = 5432

  multi_az               = var.multi_az
  create_db_subnet_group = false
  db_subnet_group_name   = var.db_subnet_group_name
  vpc_security_group_ids = [aws_security_group.postgres.id]
  publicly_accessible    = false

  backup_retention_period          = var.backup_retention_days
  backup_window                    = "03:00-04:00"
  maintenance_window               = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot            = true
  deletion_protection              = var.deletion_protection
  skip_final_snapshot              = false
  final_snapshot_identifier_prefix = "${var.identifier}-final"
  auto_minor_version_upgrade       = true

  iam_database_authentication_enabled = true

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.rds.arn
  performance_insights_retention_period = 7

  create_monitoring_role = true
  monitoring_interval    = 60
  monitoring_role_name   = "${var.identifier}-monitoring"

  enabled_cloudwatch_logs_exports        = ["postgresql", "upgrade"]
  create_cloudwatch_log_group            = true
  cloudwatch_log_group_retention_in_days = var.log_retention_days

  create_db_parameter_group = true
  parameter_group_name      = var.identifier
  parameters = [
    { name = "rds.force_ssl", value = "1" },
    { name = "log_min_duration_statement", value = "500" },
    { name = "log_connections", value = "1" },
    { name = "log_disconnections", value = "1" },
    { name = "log_lock_waits", value = "1" },
  ]

  tags = var.tags
}

# The services' login passwords; the connection-string secrets and the bootstrap Job read them.
resource "random_password" "service" {
  for_each = var.databases

  length  = 40
  special = false
}
