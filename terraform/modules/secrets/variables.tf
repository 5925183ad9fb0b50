variable "name" {
  description = "Name prefix of every secret, e.g. rankwell-staging."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the secrets."
  type        = string
}

variable "database_url" {
  description = "postgres://user:password@host:5432/db?sslmode=require, from the database module."
  type        = string
  sensitive   = true
}

variable "redis_url" {
  description = "rediss://:token@host:6379/0 of the signal store, from the cache module."
  type        = string
  sensitive   = true
}

variable "celery_broker_url" {
  description = "rediss://:token@host:6379/0?ssl_cert_reqs=required of the Celery broker."
  type        = string
  sensitive   = true
}

variable "recovery_window_days" {
  description = "Days a deleted secret can still be restored."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
