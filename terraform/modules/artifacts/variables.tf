variable "name" {
  description = "Name prefix of the bucket, e.g. rankwell-staging."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the artifacts."
  type        = string
}

variable "noncurrent_version_days" {
  description = "Days a replaced or deleted artifact version stays restorable."
  type        = number
  default     = 90
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
