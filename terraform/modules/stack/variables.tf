variable "name" {
  description = "Name prefix of every resource, e.g. rankwell-staging."
  type        = string
}

variable "environment" {
  description = "staging or production."
  type        = string
}

variable "vpc_cidr_block" {
  description = "The VPC's address range."
  type        = string
}

variable "availability_zones" {
  description = "Availability zones (2 or 3)."
  type        = list(string)
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (staging) instead of one per AZ."
  type        = bool
  default     = false
}

variable "certificate_arn" {
  description = "ACM certificate of the API's host name."
  type        = string
}

variable "allowed_hosts" {
  description = "Host names the API answers to."
  type        = list(string)
}

variable "image_tag" {
  description = "Image tag (git commit) to run; the deploy job sets it."
  type        = string
}

variable "database_instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "database_backup_retention_days" {
  description = "Days of automated RDS backups."
  type        = number
  default     = 14
}

variable "signal_store_node_type" {
  description = "ElastiCache node type of the signal store."
  type        = string
}

variable "signal_store_shards" {
  description = "Shards of the signal store (Redis Cluster)."
  type        = number
  default     = 1
}

variable "broker_node_type" {
  description = "ElastiCache node type of the Celery broker."
  type        = string
}

variable "api" {
  description = "API service size (see modules/ecs)."
  type = object({
    cpu               = number
    memory            = number
    min_count         = number
    max_count         = number
    requests_per_task = number
  })
}

variable "worker" {
  description = "Worker service size (see modules/ecs)."
  type = object({
    cpu       = number
    memory    = number
    min_count = number
    max_count = number
  })
}

variable "trainer" {
  description = "Trainer service size (see modules/ecs)."
  type = object({
    cpu    = number
    memory = number
    count  = number
  })
  default = { cpu = 2048, memory = 8192, count = 1 }
}

variable "extra_environment" {
  description = "More plain environment variables for every process, e.g. STORAGE_BACKEND and STORAGE_OPTIONS to keep model artifacts in the artifacts bucket."
  type        = map(string)
  default     = {}
}

variable "metrics_scraper_cidrs" {
  description = "Address ranges of the Prometheus servers allowed to scrape the tasks."
  type        = list(string)
  default     = []
}

variable "deletion_protection" {
  description = "Protect the database and load balancer from deletion."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days to keep CloudWatch logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
