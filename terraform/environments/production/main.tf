# Production: three AZs, a NAT gateway per AZ, larger nodes, sharded signal store.
module "rankwell" {
  source = "../../modules/stack"

  name                           = "rankwell-production"
  environment                    = "production"
  vpc_cidr_block                 = "10.10.0.0/16"
  availability_zones             = ["${var.region}a", "${var.region}b", "${var.region}c"]
  single_nat_gateway             = false
  certificate_arn                = var.certificate_arn
  allowed_hosts                  = var.allowed_hosts
  image_tag                      = var.image_tag
  metrics_scraper_cidrs          = var.metrics_scraper_cidrs
  database_instance_class        = "db.r7g.large"
  database_backup_retention_days = 30
  signal_store_node_type         = "cache.r7g.large"
  signal_store_shards            = 2
  broker_node_type               = "cache.t4g.medium"
  # 2 vCPU per API task: two gunicorn workers.
  api    = { cpu = 2048, memory = 4096, min_count = 3, max_count = 20, requests_per_task = 12000 }
  worker = { cpu = 2048, memory = 4096, min_count = 2, max_count = 8 }
}
