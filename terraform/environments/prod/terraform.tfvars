environment = "prod"

# A NAT gateway per AZ and a Multi-AZ database that cannot be deleted by accident.
single_nat_gateway       = false
db_instance_class        = "db.t4g.medium"
db_multi_az              = true
db_deletion_protection   = true
db_backup_retention_days = 14

node_instance_types = ["t3.medium"]
node_min_size       = 3
node_desired_size   = 3
node_max_size       = 6

# The production API endpoint is private: operate it from inside the VPC (or add ranges here).
api_public_access_cidrs = []

log_retention_days = 90

github_repository  = "org/wharf"
github_environment = "prod"
# The dev stack (same account or not) may already own the GitHub OIDC provider.
create_github_oidc_provider = true

cost_center = "platform"
owner       = "platform-team"
project     = "microservices-poc"

environment_monthly_budget_usd = 1200
service_monthly_budgets_usd = {
  product      = 150
  order        = 150
  notification = 150
  shared       = 750
}
