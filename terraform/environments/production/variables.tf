variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-west-1"
}

variable "image_tag" {
  description = "Image tag (the git commit) to deploy; set by the deploy job (-var image_tag=...)."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate of the API's host name, in the same region."
  type        = string
}

variable "allowed_hosts" {
  description = "Host names the API answers to."
  type        = list(string)
}

variable "metrics_scraper_cidrs" {
  description = "Address ranges of the Prometheus servers allowed to scrape the tasks."
  type        = list(string)
  default     = []
}
