variable "name" {
  description = "Name prefix of every resource, e.g. rankwell-staging."
  type        = string
}

variable "cidr_block" {
  description = "The VPC's address range; split into 16 subnets (public, private, data per AZ)."
  type        = string
}

variable "availability_zones" {
  description = "Availability zones to spread subnets over (2 or 3)."
  type        = list(string)
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (cheaper, for staging) instead of one per AZ."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the flow-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep VPC flow logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
