output "alb_dns_name" {
  description = "Point the API's host name here (alias record)."
  value       = module.alb.dns_name
}

output "alb_zone_id" {
  description = "Hosted zone of the load balancer, for the alias record."
  value       = module.alb.zone_id
}

output "ecr_repository_url" {
  description = "Push images here; deploys name a tag of it."
  value       = module.ecr.repository_url
}

output "ecs_cluster_name" {
  description = "ECS cluster of the services."
  value       = module.ecs.cluster_name
}

output "ecs_service_names" {
  description = "The api, worker, trainer and beat services."
  value       = module.ecs.service_names
}

output "migrate_task_definition_arn" {
  description = "One-off migration task, run before each deploy."
  value       = module.ecs.migrate_task_definition_arn
}

output "private_subnet_ids" {
  description = "Subnets to run one-off tasks in."
  value       = module.network.private_subnet_ids
}

output "task_security_group_id" {
  description = "Security group for one-off tasks."
  value       = module.ecs.security_group_id
}

output "database_instance_id" {
  description = "RDS instance, for snapshots and restores."
  value       = module.database.instance_id
}

output "model_artifacts_bucket" {
  description = "S3 bucket for trained model artifacts (read and written by the tasks)."
  value       = module.artifacts.bucket
}

output "secret_arns" {
  description = "Secrets Manager ARN of each secret environment variable."
  value       = module.secrets.secret_arns
}

output "log_groups" {
  description = "CloudWatch log group of each process type."
  value       = module.ecs.log_groups
}

output "alertmanager_address" {
  description = "host:port where the Prometheus servers send alerts (private DNS inside the VPC)."
  value       = module.alerting.alertmanager_address
}

output "alerting_secret_arns" {
  description = "Secrets Manager ARN of the PagerDuty routing key and the Slack webhook URL (values set out of band)."
  value       = module.alerting.secret_arns
}
