output "endpoint" {
  description = "host:port of the primary."
  value       = aws_db_instance.main.endpoint
}

output "database_url" {
  description = "DATABASE_URL for the application (TLS required); goes to Secrets Manager."
  value       = "postgres://${aws_db_instance.main.username}:${random_password.master.result}@${aws_db_instance.main.endpoint}/${aws_db_instance.main.db_name}?sslmode=require"
  sensitive   = true
}

output "instance_id" {
  description = "RDS instance identifier (for snapshots and restores in the runbook)."
  value       = aws_db_instance.main.identifier
}
