environment = "dev"

# One NAT gateway and a single-AZ database: the guide's development footprint.
single_nat_gateway     = true
db_instance_class      = "db.t4g.micro"
db_multi_az            = false
db_deletion_protection = false

# The guide's node group: 2-3 x t3.medium.
node_instance_types = ["t3.medium"]
node_min_size       = 2
node_desired_size   = 2
node_max_size       = 3

# Replace with the operators' egress ranges (or [] for a private API endpoint only).
api_public_access_cidrs = ["0.0.0.0/0"]

github_repository  = "org/wharf"
github_environment = "dev"

cost_center = "platform"
owner       = "platform-team"
project     = "microservices-poc"

environment_monthly_budget_usd = 300
service_monthly_budgets_usd = {
  product      = 40
  order        = 40
  notification = 40
  shared       = 180
}
