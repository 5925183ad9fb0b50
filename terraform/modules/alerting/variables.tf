variable "name" {
  description = "Name prefix of every resource, e.g. rankwell-staging."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the Alertmanager task and of its private DNS name."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (with egress through NAT) of the Alertmanager task."
  type        = list(string)
}

variable "cluster_arn" {
  description = "ECS cluster that runs the Alertmanager service."
  type        = string
}

variable "prometheus_cidrs" {
  description = "Address ranges of the Prometheus servers that send alerts to Alertmanager (port 9093)."
  type        = list(string)
  default     = []
}

variable "image" {
  description = "The official Alertmanager image, pinned by version (the same as platform/compose.yaml)."
  type        = string
  default     = "prom/alertmanager:v0.34.0"
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the secrets and the log group."
  type        = string
}

variable "recovery_window_days" {
  description = "Days a deleted secret can still be restored."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "Days to keep Alertmanager's logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
