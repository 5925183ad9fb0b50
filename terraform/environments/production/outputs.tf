output "alb_dns_name" {
  description = "Point the API's host name here (alias record)."
  value       = module.rankwell.alb_dns_name
}

output "alb_zone_id" {
  description = "Hosted zone of the load balancer, for the alias record."
  value       = module.rankwell.alb_zone_id
}

output "ecr_repository_url" {
  description = "Push images here; deploys name a tag of it."
  value       = module.rankwell.ecr_repository_url
}

output "ecs_cluster_name" {
  description = "ECS cluster of the services."
  value       = module.rankwell.ecs_cluster_name
}

output "ecs_service_names" {
  description = "The api, worker, trainer and beat services."
  value       = module.rankwell.ecs_service_names
}

output "migrate_task_definition_arn" {
  description = "One-off migration task, run before each deploy."
  value       = module.rankwell.migrate_task_definition_arn
}

output "private_subnet_ids" {
  description = "Subnets to run one-off tasks in."
  value       = module.rankwell.private_subnet_ids
}

output "task_security_group_id" {
  description = "Security group for one-off tasks."
  value       = module.rankwell.task_security_group_id
}

output "database_instance_id" {
  description = "RDS instance, for snapshots and restores."
  value       = module.rankwell.database_instance_id
}

output "model_artifacts_bucket" {
  description = "S3 bucket for trained model artifacts."
  value       = module.rankwell.model_artifacts_bucket
}

output "secret_arns" {
  description = "Secrets Manager ARN of each secret environment variable."
  value       = module.rankwell.secret_arns
}

output "log_groups" {
  description = "CloudWatch log group of each process type."
  value       = module.rankwell.log_groups
}

output "alertmanager_address" {
  description = "host:port where the Prometheus servers send alerts (private DNS inside the VPC)."
  value       = module.rankwell.alertmanager_address
}

output "alerting_secret_arns" {
  description = "Secrets Manager ARN of the PagerDuty routing key and the Slack webhook URL (values set out of band)."
  value       = module.rankwell.alerting_secret_arns
}
