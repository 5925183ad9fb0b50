variable "name" {
  description = "Name prefix of every resource, e.g. rankwell-staging."
  type        = string
}

variable "environment" {
  description = "staging or production: Sentry's environment."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the tasks."
  type        = string
}

variable "vpc_cidr_block" {
  description = "The VPC's range (the tasks reach PostgreSQL and Redis inside it)."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets of the tasks."
  type        = list(string)
}

variable "alb_security_group_id" {
  description = "Security group of the load balancer, admitted to port 8000."
  type        = string
}

variable "target_group_arn" {
  description = "ALB target group of the API service."
  type        = string
}

variable "alb_arn_suffix" {
  description = "ALB ARN suffix, for request-count autoscaling."
  type        = string
}

variable "target_group_arn_suffix" {
  description = "Target group ARN suffix, for request-count autoscaling."
  type        = string
}

variable "metrics_scraper_cidrs" {
  description = "Address ranges of the Prometheus servers allowed to scrape the tasks."
  type        = list(string)
  default     = []
}

variable "repository_url" {
  description = "ECR repository of the image."
  type        = string
}

variable "image_tag" {
  description = "Image tag to run (the git commit); also the Sentry release."
  type        = string
}

variable "allowed_hosts" {
  description = "Host names the API answers to (Django's ALLOWED_HOSTS)."
  type        = list(string)
}

variable "secret_arns" {
  description = "Secrets Manager ARN of each secret environment variable."
  type        = map(string)
}

variable "artifacts_bucket_arn" {
  description = "S3 bucket of model artifacts, which the tasks read and write."
  type        = string
}

variable "extra_environment" {
  description = "More plain environment variables for every process (overrides the defaults)."
  type        = map(string)
  default     = {}
}

variable "api" {
  description = "API service size: Fargate cpu units and MiB per task, task count range, ALB requests per task per minute to scale at."
  type = object({
    cpu               = number
    memory            = number
    min_count         = number
    max_count         = number
    requests_per_task = number
  })
}

variable "worker" {
  description = "Worker service size: Fargate cpu units and MiB per task, task count range."
  type = object({
    cpu       = number
    memory    = number
    min_count = number
    max_count = number
  })
}

variable "trainer" {
  description = "Trainer service size (model training, one run per task at a time): Fargate cpu units, MiB and task count."
  type = object({
    cpu    = number
    memory = number
    count  = number
  })
  default = { cpu = 2048, memory = 8192, count = 1 }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the log groups and ECS Exec sessions."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep the services' logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
