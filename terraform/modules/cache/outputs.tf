output "endpoint" {
  description = "The configuration endpoint (cluster mode) or primary endpoint."
  value       = var.cluster_mode ? aws_elasticache_replication_group.main.configuration_endpoint_address : aws_elasticache_replication_group.main.primary_endpoint_address
}

output "url" {
  description = "rediss:// URL with the AUTH token, database 0; goes to Secrets Manager."
  value       = "rediss://:${random_password.auth_token.result}@${var.cluster_mode ? aws_elasticache_replication_group.main.configuration_endpoint_address : aws_elasticache_replication_group.main.primary_endpoint_address}:6379/0"
  sensitive   = true
}
