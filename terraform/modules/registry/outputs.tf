output "repository_urls" {
  description = "Repository URL by image name (workload), for docker push and the kustomize images."
  value       = { for name, repo in aws_ecr_repository.service : name => repo.repository_url }
}

output "repository_arns" {
  description = "Repository ARN by image name (workload), for the push policy of the deploy role."
  value       = { for name, repo in aws_ecr_repository.service : name => repo.arn }
}
