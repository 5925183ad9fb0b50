output "alertmanager_address" {
  description = "host:port where Prometheus sends alerts (private DNS, resolvable inside the VPC)."
  value       = "${aws_service_discovery_service.alertmanager.name}.${aws_service_discovery_private_dns_namespace.internal.name}:9093"
}

output "secret_arns" {
  description = "Secrets Manager ARN of the PagerDuty routing key and the Slack webhook URL, whose values are set out of band."
  value       = { for name, secret in aws_secretsmanager_secret.alerting : name => secret.arn }
}

output "log_group" {
  description = "CloudWatch log group of Alertmanager (failed notifications show here)."
  value       = aws_cloudwatch_log_group.alertmanager.name
}
