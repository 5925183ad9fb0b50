output "secret_arns" {
  description = "ARN of each secret, by environment variable name (for the ECS task definitions)."
  value       = { for name, secret in aws_secretsmanager_secret.app : name => secret.arn }
}
