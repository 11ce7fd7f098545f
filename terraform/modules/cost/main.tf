# Cost allocation: the five tags activated for Cost Explorer, and monthly budgets for the
# environment as a whole and for each Service within it, each notifying at 50, 80 and 100 % of
# actual and of forecasted spend. A budget's tag filters are OR-ed, so a Service budget counts
# that Service's spend in the whole account: keep environments in separate accounts (as the
# guide does) or read the per-Service budgets of a shared account as the sum of its environments.

resource "aws_ce_cost_allocation_tag" "tag" {
  for_each = var.activate_cost_allocation_tags ? toset(var.cost_tag_keys) : toset([])

  tag_key = each.value
  status  = "Active"
}

locals {
  notifications = flatten([
    for threshold in var.notification_thresholds_percent : [
      for kind in ["ACTUAL", "FORECASTED"] : { threshold = threshold, kind = kind }
    ]
  ])

  budgets = merge(
    {
      environment = {
        name    = "${var.name}-monthly"
        limit   = var.environment_monthly_limit_usd
        filters = ["user:Environment$${var.environment}"]
      }
    },
    {
      for service, limit in var.service_monthly_limits_usd : "service-${service}" => {
        name    = "${var.name}-${service}-monthly"
        limit   = limit
        filters = ["user:Service$${service}"]
      }
    },
  )
}

resource "aws_budgets_budget" "monthly" {
  for_each = local.budgets

  name         = each.value.name
  budget_type  = "COST"
  limit_amount = format("%.2f", each.value.limit)
  limit_unit   = "USD"
  time_unit    = "MONTHLY"

  cost_filter {
    name   = "TagKeyValue"
    values = each.value.filters
  }

  dynamic "notification" {
    for_each = local.notifications
    content {
      comparison_operator        = "GREATER_THAN"
      threshold                  = notification.value.threshold
      threshold_type             = "PERCENTAGE"
      notification_type          = notification.value.kind
      subscriber_sns_topic_arns  = [var.sns_topic_arn]
      subscriber_email_addresses = var.emails
    }
  }
}
