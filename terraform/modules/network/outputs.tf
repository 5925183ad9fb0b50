output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.main.id
}

output "cidr_block" {
  description = "The VPC's address range."
  value       = aws_vpc.main.cidr_block
}

output "public_subnet_ids" {
  description = "Public subnets: the load balancer and NAT gateways."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets with egress through NAT: the ECS tasks."
  value       = aws_subnet.private[*].id
}

output "data_subnet_ids" {
  description = "Isolated subnets without a route out: RDS and ElastiCache."
  value       = aws_subnet.data[*].id
}
