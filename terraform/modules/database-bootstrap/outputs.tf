output "job_name" {
  description = "Name of the last bootstrap Job (kubectl logs -n database-bootstrap job/<name>)."
  value       = kubernetes_job_v1.bootstrap.metadata[0].name
}
