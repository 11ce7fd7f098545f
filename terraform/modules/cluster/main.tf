# The EKS cluster: a managed node group in the private subnets, every control-plane log type,
# API authentication through access entries, the IRSA OIDC provider, the core add-ons, and the
# IAM role of the AWS Load Balancer Controller (which Helm installs with the values below).

module "eks" {
  # checkov:skip=CKV_TF_1:A registry module pinned by its version constraint, as the registry resolves it; a commit hash would need a git source and lose that.
  source  = "terraform-aws-modules/eks/aws"
  version = "~> 21.0"

  name               = var.cluster_name
  kubernetes_version = var.kubernetes_version

  vpc_id     = var.vpc_id
  subnet_ids = var.subnet_ids

  endpoint_private_access      = true
  endpoint_public_access       = length(var.endpoint_public_access_cidrs) > 0
  endpoint_public_access_cidrs = var.endpoint_public_access_cidrs

  enabled_log_types                      = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  cloudwatch_log_group_retention_in_days = var.log_retention_days

  # Kubernetes secrets are envelope-encrypted with a key the module creates.
  create_kms_key    = true
  encryption_config = { resources = ["secrets"] }

  enable_irsa         = true
  authentication_mode = "API"
  # Whoever applies also creates the database bootstrap Job through the Kubernetes API.
  enable_cluster_creator_admin_permissions = true
  access_entries = {
    for index, arn in var.admin_principal_arns : "admin-${index}" => {
      principal_arn = arn
      policy_associations = {
        admin = {
          policy_arn   = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
          access_scope = { type = "cluster" }
        }
      }
    }
  }

  addons = {
    vpc-cni = {
      before_compute = true
      most_recent    = true
    }
    eks-pod-identity-agent = {
      before_compute = true
      most_recent    = true
    }
    kube-proxy = {
      most_recent = true
    }
    coredns = {
      most_recent = true
    }
  }

  eks_managed_node_groups = {
    default = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = var.node_instance_types
      min_size       = var.node_min_size
      desired_size   = var.node_desired_size
      max_size       = var.node_max_size
      subnet_ids     = var.subnet_ids

      # IMDSv2 only, one hop: pods use IRSA, never the node's role.
      metadata_options = {
        http_endpoint               = "enabled"
        http_tokens                 = "required"
        http_put_response_hop_limit = 1
      }
    }
  }

  tags = var.tags
}

module "load_balancer_controller_irsa" {
  # checkov:skip=CKV_TF_1:A registry module pinned by its version constraint, as the registry resolves it; a commit hash would need a git source and lose that.
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"
  version = "~> 6.0"

  name                                   = "${var.cluster_name}-aws-load-balancer-controller"
  attach_load_balancer_controller_policy = true

  oidc_providers = {
    cluster = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["kube-system:aws-load-balancer-controller"]
    }
  }

  tags = var.tags
}
