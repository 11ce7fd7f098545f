# The VPC across three availability zones: private subnets for the nodes, isolated database
# subnets for RDS, public subnets only for the ALBs and the NAT gateways. AWS APIs the pods
# call (SQS, Secrets Manager, ECR, STS, CloudWatch, X-Ray) are reached through endpoints.

data "aws_availability_zones" "available" {
  # checkov:skip=CKV_AWS_394:Only the first three zone names (sorted) are used, so a zone AWS adds later never changes which subnets exist.
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, 3)
}

module "vpc" {
  # checkov:skip=CKV_TF_1:A registry module pinned by its version constraint, as the registry resolves it; a commit hash would need a git source and lose that.
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 6.0"

  name = var.name
  cidr = var.cidr
  azs  = local.azs

  private_subnets  = [for i in range(3) : cidrsubnet(var.cidr, 4, i)]
  public_subnets   = [for i in range(3) : cidrsubnet(var.cidr, 8, 48 + i)]
  database_subnets = [for i in range(3) : cidrsubnet(var.cidr, 8, 52 + i)]

  create_database_subnet_group       = true
  create_database_subnet_route_table = true

  enable_nat_gateway     = true
  single_nat_gateway     = var.single_nat_gateway
  one_nat_gateway_per_az = !var.single_nat_gateway

  enable_dns_hostnames = true
  enable_dns_support   = true

  # The AWS Load Balancer Controller picks subnets by these tags: internet-facing ALBs in the
  # public subnets, internal ones in the private subnets.
  public_subnet_tags = {
    "kubernetes.io/role/elb"                    = "1"
    "kubernetes.io/cluster/${var.cluster_name}" = "shared"
  }
  private_subnet_tags = {
    "kubernetes.io/role/internal-elb"           = "1"
    "kubernetes.io/cluster/${var.cluster_name}" = "shared"
  }

  # Nothing may use the default security group.
  manage_default_security_group  = true
  default_security_group_ingress = []
  default_security_group_egress  = []

  enable_flow_log                                 = true
  create_flow_log_cloudwatch_log_group            = true
  create_flow_log_cloudwatch_iam_role             = true
  flow_log_cloudwatch_log_group_retention_in_days = var.flow_log_retention_days
  flow_log_max_aggregation_interval               = 60

  tags = var.tags
}

module "endpoints" {
  # checkov:skip=CKV_TF_1:A registry module pinned by its version constraint, as the registry resolves it; a commit hash would need a git source and lose that.
  source  = "terraform-aws-modules/vpc/aws//modules/vpc-endpoints"
  version = "~> 6.0"

  vpc_id = module.vpc.vpc_id

  create_security_group      = true
  security_group_name_prefix = "${var.name}-endpoints-"
  security_group_description = "HTTPS from inside the VPC to the interface endpoints"
  security_group_rules = {
    ingress_https = {
      description = "HTTPS from the VPC"
      cidr_blocks = [module.vpc.vpc_cidr_block]
    }
  }

  endpoints = merge(
    {
      # ECR serves image layers from S3: a gateway endpoint keeps pulls off the NAT.
      s3 = {
        service         = "s3"
        service_type    = "Gateway"
        route_table_ids = module.vpc.private_route_table_ids
        tags            = { Name = "${var.name}-s3" }
      }
    },
    {
      for service in var.interface_endpoints : replace(service, ".", "_") => {
        service             = service
        private_dns_enabled = true
        subnet_ids          = module.vpc.private_subnets
        tags                = { Name = "${var.name}-${service}" }
      }
    },
  )

  tags = var.tags
}
