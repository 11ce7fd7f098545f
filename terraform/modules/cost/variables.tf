variable "name" {
  type        = string
  description = "Prefix of the budgets' names (e.g. wharf-dev)."
}

variable "environment" {
  type        = string
  description = "Value of the Environment tag the budgets filter on."
}

variable "cost_tag_keys" {
  type        = list(string)
  description = "Tag keys activated as cost-allocation tags."
}

variable "activate_cost_allocation_tags" {
  type        = bool
  description = "Activate the cost-allocation tags (the account's billing must already have seen each key, up to 24 hours after the first tagged resource; only one stack per payer account should own them)."
  default     = true
}

variable "environment_monthly_limit_usd" {
  type        = number
  description = "Monthly budget in USD of everything tagged with this Environment."
}

variable "service_monthly_limits_usd" {
  type        = map(number)
  description = "Monthly budget in USD per Service tag value (product, order, notification, shared) within this Environment."
}

variable "notification_thresholds_percent" {
  type        = list(number)
  description = "Percentages of a budget at which actual and forecasted spend notify."
  default     = [50, 80, 100]
}

variable "sns_topic_arn" {
  type        = string
  description = "Topic the budget notifications go to (the alarm topic)."
}

variable "emails" {
  type        = list(string)
  description = "E-mail addresses the budget notifications also go to."
  default     = []
}
