variable "name" {
  description = "Name prefix of every resource, e.g. rankwell-staging."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
