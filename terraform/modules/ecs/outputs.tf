output "cluster_name" {
  description = "ECS cluster name."
  value       = aws_ecs_cluster.main.name
}

output "cluster_arn" {
  description = "ECS cluster ARN (the alerting module runs Alertmanager in it)."
  value       = aws_ecs_cluster.main.arn
}

output "security_group_id" {
  description = "Security group of the tasks (admitted by RDS and ElastiCache)."
  value       = aws_security_group.tasks.id
}

output "migrate_task_definition_arn" {
  description = "Run this task definition once before each deploy (docs/operations.md)."
  value       = aws_ecs_task_definition.service["migrate"].arn
}

output "service_names" {
  description = "ECS service names."
  value       = [aws_ecs_service.api.name, aws_ecs_service.worker.name, aws_ecs_service.trainer.name, aws_ecs_service.beat.name]
}

output "log_groups" {
  description = "CloudWatch log group of each process type."
  value       = { for name, group in aws_cloudwatch_log_group.service : name => group.name }
}
