variable "name" {
  description = "Name of the replication group, e.g. rankwell-staging-signals."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the cache."
  type        = string
}

variable "subnet_ids" {
  description = "Isolated data subnets, one per AZ."
  type        = list(string)
}

variable "client_security_group_id" {
  description = "Security group of the ECS tasks allowed to connect."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts data at rest and the slow-log group."
  type        = string
}

variable "cluster_mode" {
  description = "Redis Cluster (sharded) when true; a primary with replicas when false."
  type        = bool
}

variable "shards" {
  description = "Node groups in cluster mode."
  type        = number
  default     = 1
}

variable "replicas_per_shard" {
  description = "Replicas per shard (at least 1 for failover)."
  type        = number
  default     = 1
}

variable "node_type" {
  description = "ElastiCache node type."
  type        = string
}

variable "engine_version" {
  description = "Redis engine version."
  type        = string
  default     = "7.1"
}

variable "snapshot_retention_days" {
  description = "Days of daily snapshots."
  type        = number
  default     = 7
}

variable "log_retention_days" {
  description = "Days to keep the slow log."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
