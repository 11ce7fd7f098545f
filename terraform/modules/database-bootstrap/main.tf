# Creates the per-service databases and roles inside the RDS instance.
#
# Why a Job and not the PostgreSQL provider: the instance sits in isolated subnets with no route
# from wherever `terraform apply` runs (a laptop, a CI runner), so a provider would need a bastion
# or a VPN. A Job runs in the cluster, which already reaches RDS, and it stays part of the plan:
# Terraform re-runs it whenever the script, a password or the host changes (its name carries a
# hash of them) and waits for it to succeed. bootstrap.sh is idempotent; its behaviour is tested
# against a real PostgreSQL by terraform/tests/test_database_bootstrap.py.

data "aws_secretsmanager_secret_version" "master" {
  secret_id = var.master_user_secret_arn
}

locals {
  master = jsondecode(data.aws_secretsmanager_secret_version.master.secret_string)
  # "database:role" pairs, one per service.
  pairs  = join(" ", [for key in sort(keys(var.databases)) : "${var.databases[key].database}:${var.databases[key].role}"])
  script = file("${path.module}/bootstrap.sh")
  revision = substr(sha256(join("\n", concat(
    [local.script, local.pairs, var.host, tostring(var.port), local.master.password],
    [for key in sort(keys(var.databases)) : var.passwords[key]],
  ))), 0, 10)
}

resource "kubernetes_namespace_v1" "bootstrap" {
  metadata {
    name = var.namespace
  }
}

resource "kubernetes_secret_v1" "credentials" {
  metadata {
    name      = "database-credentials"
    namespace = kubernetes_namespace_v1.bootstrap.metadata[0].name
  }

  data = merge(
    {
      PGUSER     = local.master.username
      PGPASSWORD = local.master.password
    },
    { for key, db in var.databases : "password-${db.role}" => var.passwords[key] },
  )
}

resource "kubernetes_config_map_v1" "script" {
  metadata {
    name      = "database-bootstrap"
    namespace = kubernetes_namespace_v1.bootstrap.metadata[0].name
  }

  data = {
    "bootstrap.sh" = local.script
  }
}

resource "kubernetes_job_v1" "bootstrap" {
  metadata {
    name      = "database-bootstrap-${local.revision}"
    namespace = kubernetes_namespace_v1.bootstrap.metadata[0].name
  }

  spec {
    backoff_limit              = 6
    ttl_seconds_after_finished = 86400

    template {
      metadata {
        labels = { "app.kubernetes.io/name" = "database-bootstrap" }
      }

      spec {
        restart_policy                  = "Never"
        automount_service_account_token = false

        security_context {
          run_as_non_root = true
          run_as_user     = 70
          run_as_group    = 70
          seccomp_profile {
            type = "RuntimeDefault"
          }
        }

        container {
          name    = "bootstrap"
          image   = var.image
          command = ["/bin/sh", "/scripts/bootstrap.sh"]

          env {
            name  = "PGHOST"
            value = var.host
          }
          env {
            name  = "PGPORT"
            value = tostring(var.port)
          }
          env {
            name  = "PGDATABASE"
            value = "postgres"
          }
          env {
            name  = "PGSSLMODE"
            value = "require"
          }
          env {
            name  = "WHARF_DATABASES"
            value = local.pairs
          }
          env {
            name  = "WHARF_PASSWORD_DIR"
            value = "/credentials"
          }
          env {
            name = "PGUSER"
            value_from {
              secret_key_ref {
                name = kubernetes_secret_v1.credentials.metadata[0].name
                key  = "PGUSER"
              }
            }
          }
          env {
            name = "PGPASSWORD"
            value_from {
              secret_key_ref {
                name = kubernetes_secret_v1.credentials.metadata[0].name
                key  = "PGPASSWORD"
              }
            }
          }

          resources {
            requests = { cpu = "50m", memory = "64Mi" }
            limits   = { cpu = "500m", memory = "128Mi" }
          }

          security_context {
            allow_privilege_escalation = false
            read_only_root_filesystem  = true
            capabilities {
              drop = ["ALL"]
            }
          }

          volume_mount {
            name       = "script"
            mount_path = "/scripts"
            read_only  = true
          }
          volume_mount {
            name       = "credentials"
            mount_path = "/credentials"
            read_only  = true
          }
        }

        volume {
          name = "script"
          config_map {
            name = kubernetes_config_map_v1.script.metadata[0].name
          }
        }
        volume {
          name = "credentials"
          secret {
            secret_name = kubernetes_secret_v1.credentials.metadata[0].name
            dynamic "items" {
              for_each = toset([for db in var.databases : db.role])
              content {
                key  = "password-${items.value}"
                path = items.value
              }
            }
          }
        }
      }
    }
  }

  wait_for_completion = true

  timeouts {
    create = "10m"
    update = "10m"
  }
}
