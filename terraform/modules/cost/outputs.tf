output "budget_names" {
  description = "Names of the monthly budgets (environment and per Service)."
  value       = [for budget in aws_budgets_budget.monthly : budget.name]
}
