# The whole AWS footprint of one environment, composed from the modules. dev and prod share this
# file (the tests keep them identical); their differences are in terraform.tfvars and backend.tf.

data "aws_caller_identity" "current" {}

locals {
  name = "wharf-${var.environment}"

  cost_tags = {
    Environment = var.environment
    Service     = "shared"
    CostCenter  = var.cost_center
    Owner       = var.owner
    Project     = var.project
  }

  workloads = { for key, s in var.services : s.workload => s.service_tag }

  # What each service may do with the queues (see modules/service-identity): orders publishes;
  # notifications consumes, dead-letters poison events itself and replays from the DLQ.
  queue_access = {
    products = {
      send      = []
      consume   = []
      reads_url = false
    }
    orders = {
      send      = [module.messaging.queue_arn]
      consume   = []
      reads_url = true
    }
    notifications = {
      send      = [module.messaging.queue_arn, module.messaging.dlq_arn]
      consume   = [module.messaging.queue_arn, module.messaging.dlq_arn]
      reads_url = true
    }
  }
}

module "network" {
  source = "../../modules/network"

  name               = local.name
  cluster_name       = var.cluster_name
  cidr               = var.vpc_cidr
  single_nat_gateway = var.single_nat_gateway
  tags               = local.cost_tags
}

module "cluster" {
  source = "../../modules/cluster"

  cluster_name                 = var.cluster_name
  region                       = var.region
  vpc_id                       = module.network.vpc_id
  subnet_ids                   = module.network.private_subnet_ids
  endpoint_public_access_cidrs = var.api_public_access_cidrs
  node_instance_types          = var.node_instance_types
  node_min_size                = var.node_min_size
  node_desired_size            = var.node_desired_size
  node_max_size                = var.node_max_size
  admin_principal_arns         = var.cluster_admin_arns
  log_retention_days           = var.log_retention_days
  alb_default_tags             = local.cost_tags
  tags                         = local.cost_tags
}

module "registry" {
  source = "../../modules/registry"

  repositories = local.workloads
  name_prefix  = var.ecr_name_prefix
}

module "messaging" {
  source = "../../modules/messaging"

  queue_name        = var.queue_name
  dlq_name          = var.dlq_name
  max_receive_count = var.max_receive_count
}

module "database" {
  source = "../../modules/database"

  identifier                = local.name
  databases                 = { for key, s in var.services : key => { database = s.database, role = s.workload } }
  instance_class            = var.db_instance_class
  multi_az                  = var.db_multi_az
  deletion_protection       = var.db_deletion_protection
  backup_retention_days     = var.db_backup_retention_days
  vpc_id                    = module.network.vpc_id
  db_subnet_group_name      = module.network.database_subnet_group_name
  client_security_group_ids = [module.cluster.node_security_group_id]
  log_retention_days        = var.log_retention_days
}

module "database_bootstrap" {
  source = "../../modules/database-bootstrap"

  host                   = module.database.address
  port                   = module.database.port
  master_user_secret_arn = module.database.master_user_secret_arn
  databases              = { for key, s in var.services : key => { database = s.database, role = s.workload } }
  passwords              = module.database.service_passwords
}

module "secrets" {
  source = "../../modules/secrets"

  connection_secrets = {
    for key, s in var.services : key => {
      name        = s.connection_secret
      service_tag = s.service_tag
      database    = s.database
      role        = s.workload
    }
  }
  passwords             = module.database.service_passwords
  database_host         = module.database.address
  database_port         = module.database.port
  queue_url_secret_name = var.queue_url_secret
  queue_url             = module.messaging.queue_url

  # The connection strings are usable only once the bootstrap Job has set the passwords.
  depends_on = [module.database_bootstrap]
}

module "service_identity" {
  source = "../../modules/service-identity"

  role_name_prefix  = var.cluster_name
  namespace         = var.namespace
  oidc_provider_arn = module.cluster.oidc_provider_arn
  oidc_issuer_url   = module.cluster.oidc_issuer_url
  services = {
    for key, s in var.services : s.workload => {
      service_account = s.workload
      service_tag     = s.service_tag
      secret_arns = concat(
        [module.secrets.connection_secret_arns[key]],
        local.queue_access[key].reads_url ? [module.secrets.queue_url_secret_arn] : [],
      )
      send_queue_arns    = local.queue_access[key].send
      consume_queue_arns = local.queue_access[key].consume
    }
  }
  secrets_kms_key_arn = module.secrets.kms_key_arn
}

module "observability" {
  source = "../../modules/observability"

  name                      = local.name
  cluster_name              = var.cluster_name
  namespace                 = var.namespace
  workloads                 = local.workloads
  log_retention_days        = var.log_retention_days
  metrics_namespace         = var.metrics_namespace
  queue_name                = module.messaging.queue_name
  dlq_name                  = module.messaging.dlq_name
  db_instance_identifier    = module.database.instance_identifier
  alb_arn_suffix            = var.alb_arn_suffix
  alarm_emails              = var.alarm_emails
  collector_namespace       = var.collector_namespace
  collector_service_account = var.collector_service_account
  oidc_provider_arn         = module.cluster.oidc_provider_arn
  oidc_issuer_url           = module.cluster.oidc_issuer_url
}

module "edge_security" {
  source = "../../modules/edge-security"

  name                     = local.name
  rate_limit_per_5_minutes = var.waf_rate_limit_per_5_minutes
  log_retention_days       = var.log_retention_days
  log_kms_key_arn          = module.observability.kms_key_arn
}

module "cost" {
  source = "../../modules/cost"

  name                          = local.name
  environment                   = var.environment
  cost_tag_keys                 = keys(local.cost_tags)
  activate_cost_allocation_tags = var.activate_cost_allocation_tags
  environment_monthly_limit_usd = var.environment_monthly_budget_usd
  service_monthly_limits_usd    = var.service_monthly_budgets_usd
  sns_topic_arn                 = module.observability.alarm_topic_arn
  emails                        = var.alarm_emails
}

module "deploy_identity" {
  source = "../../modules/deploy-identity"

  role_name            = "${local.name}-github-deploy"
  github_repository    = var.github_repository
  github_environment   = var.github_environment
  github_branch        = var.github_branch
  create_oidc_provider = var.create_github_oidc_provider
  ecr_repository_arns  = values(module.registry.repository_arns)
  cluster_name         = module.cluster.cluster_name
  cluster_arn          = module.cluster.cluster_arn
  deploy_namespace     = var.namespace
}
