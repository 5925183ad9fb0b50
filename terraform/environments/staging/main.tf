# Staging: the production shape (multi-AZ, TLS, the same modules) at the smallest sizes.
module "rankwell" {
  source = "../../modules/stack"

  name                           = "rankwell-staging"
  environment                    = "staging"
  vpc_cidr_block                 = "10.20.0.0/16"
  availability_zones             = ["${var.region}a", "${var.region}b"]
  single_nat_gateway             = true
  certificate_arn                = var.certificate_arn
  allowed_hosts                  = var.allowed_hosts
  image_tag                      = var.image_tag
  metrics_scraper_cidrs          = var.metrics_scraper_cidrs
  database_instance_class        = "db.t4g.medium"
  database_backup_retention_days = 7
  signal_store_node_type         = "cache.t4g.medium"
  signal_store_shards            = 1
  broker_node_type               = "cache.t4g.micro"
  api                            = { cpu = 1024, memory = 2048, min_count = 2, max_count = 4, requests_per_task = 6000 }
  worker                         = { cpu = 1024, memory = 2048, min_count = 1, max_count = 2 }
}
