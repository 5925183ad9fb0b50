output "dns_name" {
  description = "DNS name of the load balancer: point the API's host name (alias record) here."
  value       = aws_lb.main.dns_name
}

output "zone_id" {
  description = "Hosted zone of the load balancer, for an alias record."
  value       = aws_lb.main.zone_id
}

output "security_group_id" {
  description = "Security group of the load balancer (the API tasks admit it)."
  value       = aws_security_group.alb.id
}

output "target_group_arn" {
  description = "Target group of the API service."
  value       = aws_lb_target_group.api.arn
}

output "arn_suffix" {
  description = "For CloudWatch metrics and request-count autoscaling."
  value       = aws_lb.main.arn_suffix
}

output "target_group_arn_suffix" {
  description = "For request-count autoscaling."
  value       = aws_lb_target_group.api.arn_suffix
}
