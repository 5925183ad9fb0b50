# Alertmanager on Fargate: one task running the official image with the same routing as the
# compose stack (platform/alertmanager/alertmanager.yml, tested by amtool in the suite). The
# Prometheus servers that scrape the tasks (metrics_scraper_cidrs) send it their alerts at
# alertmanager.<name>.internal:9093 (Cloud Map). Pages go to PagerDuty, tickets to Slack.
#
# The PagerDuty routing key and the Slack webhook URL live in Secrets Manager with no value in
# the repository or in Terraform state: they are set out of band (`aws secretsmanager
# put-secret-value`, docs/operations.md, "Alert routing"). ECS injects them into the task, whose
# start writes them to the files the configuration reads (routing_key_file, api_url_file).
data "aws_region" "current" {}

locals {
  config_path = "${path.module}/../../../platform/alertmanager/alertmanager.yml"
  secret_files = {
    PAGERDUTY_ROUTING_KEY = "pagerduty_routing_key"
    SLACK_WEBHOOK_URL     = "slack_webhook_url"
  }
  # /alertmanager is the image's data volume, owned by its user (nobody): the one writable
  # place under a read-only root. The secrets leave the environment before Alertmanager starts.
  start = join("\n", concat(
    ["set -eu", "umask 077", "mkdir -p /alertmanager/secrets",
    "printf '%s' \"$ALERTMANAGER_CONFIG\" > /alertmanager/alertmanager.yml"],
    [for name, file in local.secret_files : "printf '%s' \"$${${name}}\" > /alertmanager/secrets/${file}"],
    [join(" ", concat(
      ["exec env -u ALERTMANAGER_CONFIG"], [for name in keys(local.secret_files) : "-u ${name}"],
      ["/bin/alertmanager --config.file=/alertmanager/alertmanager.yml --storage.path=/alertmanager",
      "--cluster.listen-address= --web.listen-address=:9093"],
    ))],
  ))
}

# --- the secrets, values set out of band ---------------------------------------------------
resource "aws_secretsmanager_secret" "alerting" {
  #checkov:skip=CKV2_AWS_57:Issued by PagerDuty and Slack, not by AWS: rotated by hand with the runbook (docs/operations.md, "Alert routing").
  for_each                = local.secret_files
  name                    = "${var.name}/${each.key}"
  description             = "${var.name}: Alertmanager's ${each.key}; the value is set out of band, never in Terraform"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days
  tags                    = var.tags
}

# --- IAM: the execution role pulls the image, reads the two secrets and writes logs --------
data "aws_iam_policy_document" "tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "execution" {
  name               = "${var.name}-alertmanager-execution"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [for secret in aws_secretsmanager_secret.alerting : secret.arn]
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "read-alerting-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

resource "aws_cloudwatch_log_group" "alertmanager" {
  name              = "/rankwell/${var.name}/alertmanager"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# --- network: Prometheus in, PagerDuty and Slack out ----------------------------------------
resource "aws_security_group" "alertmanager" {
  name        = "${var.name}-alertmanager"
  description = "Alertmanager: alerts in from Prometheus, notifications out to PagerDuty and Slack"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "from_prometheus" {
  for_each          = toset(var.prometheus_cidrs)
  security_group_id = aws_security_group.alertmanager.id
  description       = "Prometheus sends alerts to Alertmanager's API"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 9093
  to_port           = 9093
}

resource "aws_vpc_security_group_egress_rule" "https" {
  #checkov:skip=CKV_AWS_382:HTTPS out through NAT to PagerDuty, Slack, the image registry, Secrets Manager and CloudWatch, whose addresses are not fixed.
  security_group_id = aws_security_group.alertmanager.id
  description       = "HTTPS to PagerDuty, Slack and AWS APIs"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# --- discovery: alertmanager.<name>.internal ------------------------------------------------
resource "aws_service_discovery_private_dns_namespace" "internal" {
  name        = "${var.name}.internal"
  description = "${var.name}: private names of internal services"
  vpc         = var.vpc_id
  tags        = var.tags
}

resource "aws_service_discovery_service" "alertmanager" {
  name = "alertmanager"

  dns_config {
    namespace_id   = aws_service_discovery_private_dns_namespace.internal.id
    routing_policy = "MULTIVALUE"
    dns_records {
      type = "A"
      ttl  = 10
    }
  }

  # ECS reports the task's health to Cloud Map: an unhealthy task leaves the DNS answer.
  health_check_custom_config {}

  tags = var.tags
}

# --- the task and its service ---------------------------------------------------------------
resource "aws_ecs_task_definition" "alertmanager" {
  family                   = "${var.name}-alertmanager"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([
    {
      name                   = "alertmanager"
      image                  = var.image
      entryPoint             = ["/bin/sh", "-c"]
      command                = [local.start]
      essential              = true
      readonlyRootFilesystem = true
      user                   = "65534:65534"
      environment            = [{ name = "ALERTMANAGER_CONFIG", value = file(local.config_path) }]
      secrets = [
        for name, secret in aws_secretsmanager_secret.alerting : { name = name, valueFrom = secret.arn }
      ]
      portMappings = [{ containerPort = 9093, protocol = "tcp" }]
      mountPoints  = [{ sourceVolume = "data", containerPath = "/alertmanager", readOnly = false }]
      healthCheck = {
        command     = ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9093/-/healthy"]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 15
      }
      linuxParameters = { initProcessEnabled = true }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.alertmanager.name
          awslogs-region        = data.aws_region.current.name
          awslogs-stream-prefix = "alertmanager"
        }
      }
    }
  ])

  # Silences and the notification log: lost when the task is replaced (re-create silences
  # after a deploy); the routing itself is all in the configuration.
  volume {
    name = "data"
  }

  tags = var.tags
}

resource "aws_ecs_service" "alertmanager" {
  name                   = "alertmanager"
  cluster                = var.cluster_arn
  task_definition        = aws_ecs_task_definition.alertmanager.arn
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  desired_count          = 1
  enable_execute_command = false
  propagate_tags         = "SERVICE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.alertmanager.id]
    assign_public_ip = false
  }

  service_registries {
    registry_arn = aws_service_discovery_service.alertmanager.arn
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags
}
