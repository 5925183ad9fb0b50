# One whole Rankwell environment: the modules wired together. Each environment under
# environments/ calls this with its own sizes.
locals {
  tags = merge(var.tags, { Application = "rankwell", Environment = var.environment })
}

module "kms" {
  source = "../kms"
  name   = var.name
  tags   = local.tags
}

module "network" {
  source             = "../network"
  name               = var.name
  cidr_block         = var.vpc_cidr_block
  availability_zones = var.availability_zones
  single_nat_gateway = var.single_nat_gateway
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
  tags               = local.tags
}

module "ecr" {
  source      = "../ecr"
  name        = var.name
  kms_key_arn = module.kms.key_arn
  tags        = local.tags
}

module "artifacts" {
  source      = "../artifacts"
  name        = var.name
  kms_key_arn = module.kms.key_arn
  tags        = local.tags
}

module "alb" {
  source              = "../alb"
  name                = var.name
  vpc_id              = module.network.vpc_id
  vpc_cidr_block      = module.network.cidr_block
  public_subnet_ids   = module.network.public_subnet_ids
  certificate_arn     = var.certificate_arn
  kms_key_arn         = module.kms.key_arn
  deletion_protection = var.deletion_protection
  log_retention_days  = var.log_retention_days
  tags                = local.tags
}

module "database" {
  source                   = "../database"
  name                     = var.name
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.data_subnet_ids
  client_security_group_id = module.ecs.security_group_id
  kms_key_arn              = module.kms.key_arn
  instance_class           = var.database_instance_class
  backup_retention_days    = var.database_backup_retention_days
  deletion_protection      = var.deletion_protection
  tags                     = local.tags
}

module "signal_store" {
  source                   = "../cache"
  name                     = "${var.name}-signals"
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.data_subnet_ids
  client_security_group_id = module.ecs.security_group_id
  kms_key_arn              = module.kms.key_arn
  cluster_mode             = true
  shards                   = var.signal_store_shards
  replicas_per_shard       = 1
  node_type                = var.signal_store_node_type
  log_retention_days       = var.log_retention_days
  tags                     = local.tags
}

module "broker" {
  source                   = "../cache"
  name                     = "${var.name}-broker"
  vpc_id                   = module.network.vpc_id
  subnet_ids               = module.network.data_subnet_ids
  client_security_group_id = module.ecs.security_group_id
  kms_key_arn              = module.kms.key_arn
  cluster_mode             = false
  replicas_per_shard       = 1
  node_type                = var.broker_node_type
  log_retention_days       = var.log_retention_days
  tags                     = local.tags
}

module "secrets" {
  source            = "../secrets"
  name              = var.name
  kms_key_arn       = module.kms.key_arn
  database_url      = module.database.database_url
  redis_url         = module.signal_store.url
  celery_broker_url = "${module.broker.url}?ssl_cert_reqs=required"
  tags              = local.tags
}

module "ecs" {
  source                  = "../ecs"
  name                    = var.name
  environment             = var.environment
  vpc_id                  = module.network.vpc_id
  vpc_cidr_block          = module.network.cidr_block
  private_subnet_ids      = module.network.private_subnet_ids
  alb_security_group_id   = module.alb.security_group_id
  target_group_arn        = module.alb.target_group_arn
  alb_arn_suffix          = module.alb.arn_suffix
  target_group_arn_suffix = module.alb.target_group_arn_suffix
  metrics_scraper_cidrs   = var.metrics_scraper_cidrs
  repository_url          = module.ecr.repository_url
  image_tag               = var.image_tag
  allowed_hosts           = var.allowed_hosts
  secret_arns             = module.secrets.secret_arns
  artifacts_bucket_arn    = module.artifacts.bucket_arn
  extra_environment = merge({
    # Model artifacts in the artifacts bucket, through django-storages (the task role may).
    STORAGE_BACKEND = "storages.backends.s3.S3Storage"
    STORAGE_OPTIONS = jsonencode({ bucket_name = module.artifacts.bucket })
    # The signal store's ElastiCache group runs in cluster mode.
    REDIS_CLUSTER = "true"
  }, var.extra_environment)
  api                = var.api
  worker             = var.worker
  trainer            = var.trainer
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
  tags               = local.tags
}

# Alertmanager: pages to PagerDuty, tickets to Slack, with the compose stack's routing.
module "alerting" {
  source             = "../alerting"
  name               = var.name
  vpc_id             = module.network.vpc_id
  private_subnet_ids = module.network.private_subnet_ids
  cluster_arn        = module.ecs.cluster_arn
  prometheus_cidrs   = var.metrics_scraper_cidrs
  kms_key_arn        = module.kms.key_arn
  log_retention_days = var.log_retention_days
  tags               = local.tags
}
