provider "aws" {
  region = var.region

  # Every taggable resource carries the five cost-allocation tags; per-service resources
  # override Service.
  default_tags {
    tags = local.cost_tags
  }
}

# The database bootstrap Job runs in the cluster this stack creates.
provider "kubernetes" {
  host                   = module.cluster.cluster_endpoint
  cluster_ca_certificate = base64decode(module.cluster.cluster_certificate_authority_data)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", module.cluster.cluster_name, "--region", var.region]
  }
}
