# ECS on Fargate: one cluster, four services from the same image (api behind the ALB,
# worker, trainer, beat), a one-off `migrate` task definition run before each deploy, autoscaling for
# api (CPU and requests per task) and worker (CPU), logs in CloudWatch.
data "aws_region" "current" {}

locals {
  image = "${var.repository_url}:${var.image_tag}"
  environment = [
    for name, value in merge({
      RANKWELL_ENV                 = "production"
      RANKWELL_RELEASE             = var.image_tag
      SENTRY_ENVIRONMENT           = var.environment
      ALLOWED_HOSTS                = join(",", var.allowed_hosts)
      CSRF_TRUSTED_ORIGINS         = join(",", [for host in var.allowed_hosts : "https://${host}"])
      PROMETHEUS_MULTIPROC_DIR     = "/tmp/prometheus"
      LOG_LEVEL                    = "INFO"
      SIGNAL_STORE_NAMESPACE       = "rw"
      DATABASE_CONN_MAX_AGE        = "60"
      SIGNAL_STORE_TIMEOUT_SECONDS = "0.05"
    }, var.extra_environment) : { name = name, value = value }
  ]
  secrets = [for name, arn in var.secret_arns : { name = name, valueFrom = arn }]

  services = {
    api = {
      command = ["api"], cpu = var.api.cpu, memory = var.api.memory, port = 8000
      extra   = [{ name = "RANKWELL_ROLE", value = "api" }, { name = "GUNICORN_WORKERS", value = tostring(max(1, floor(var.api.cpu / 1024))) }]
    }
    worker = {
      command = ["worker"], cpu = var.worker.cpu, memory = var.worker.memory, port = 9100
      extra   = [{ name = "RANKWELL_ROLE", value = "worker" }, { name = "CELERY_CONCURRENCY", value = tostring(max(1, floor(var.worker.cpu / 512))) }]
    }
    # Model training on its own queue, one run at a time: it never delays the worker's tasks.
    trainer = {
      command = ["trainer"], cpu = var.trainer.cpu, memory = var.trainer.memory, port = 9100
      extra   = [{ name = "RANKWELL_ROLE", value = "trainer" }, { name = "CELERY_CONCURRENCY", value = "1" }]
    }
    beat = {
      command = ["beat"], cpu = 256, memory = 512, port = 9100
      extra   = [{ name = "RANKWELL_ROLE", value = "beat" }]
    }
    migrate = {
      command = ["migrate"], cpu = 256, memory = 512, port = 0
      extra   = [{ name = "RANKWELL_ROLE", value = "migrate" }]
    }
  }
}

resource "aws_cloudwatch_log_group" "exec" {
  name              = "/rankwell/${var.name}/ecs-exec"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_ecs_cluster" "main" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  configuration {
    execute_command_configuration {
      kms_key_id = var.kms_key_arn
      logging    = "OVERRIDE"
      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = aws_cloudwatch_log_group.exec.name
      }
    }
  }

  tags = var.tags
}

resource "aws_cloudwatch_log_group" "service" {
  for_each          = local.services
  name              = "/rankwell/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# --- IAM: the execution role pulls the image, reads the secrets and writes logs; the task role
# --- (what the application itself may do on AWS) reaches the model-artifact bucket only. ------
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
  name               = "${var.name}-ecs-execution"
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
    resources = values(var.secret_arns)
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "read-rankwell-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-ecs-task"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
  tags               = var.tags
}

# The one thing the application does on AWS: read and write model artifacts.
data "aws_iam_policy_document" "task_artifacts" {
  statement {
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${var.artifacts_bucket_arn}/*"]
  }
  statement {
    actions   = ["s3:ListBucket"]
    resources = [var.artifacts_bucket_arn]
  }
  statement {
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "task_artifacts" {
  name   = "model-artifacts"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task_artifacts.json
}

# --- network ----------------------------------------------------------------------------------
resource "aws_security_group" "tasks" {
  name        = "${var.name}-tasks"
  description = "Rankwell API, worker and beat tasks"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "from_alb" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "gunicorn from the load balancer"
  referenced_security_group_id = var.alb_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 8000
  to_port                      = 8000
}

resource "aws_vpc_security_group_ingress_rule" "metrics" {
  for_each          = toset(var.metrics_scraper_cidrs)
  security_group_id = aws_security_group.tasks.id
  description       = "Prometheus scrapes /metrics (8000) and the Celery exporters (9100)"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 8000
  to_port           = 9100
}

resource "aws_vpc_security_group_egress_rule" "in_vpc" {
  security_group_id = aws_security_group.tasks.id
  description       = "PostgreSQL and Redis inside the VPC"
  cidr_ipv4         = var.vpc_cidr_block
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 6379
}

resource "aws_vpc_security_group_egress_rule" "https" {
  #checkov:skip=CKV_AWS_382:HTTPS out through NAT to ECR, Secrets Manager, CloudWatch and Sentry, whose addresses are not fixed.
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to AWS APIs and Sentry"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# --- task definitions and services ------------------------------------------------------------
resource "aws_ecs_task_definition" "service" {
  for_each                 = local.services
  family                   = "${var.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([
    {
      name                   = each.key
      image                  = local.image
      command                = each.value.command
      essential              = true
      readonlyRootFilesystem = true
      user                   = "10001:10001"
      environment            = concat(local.environment, each.value.extra)
      secrets                = local.secrets
      portMappings           = each.value.port == 0 ? [] : [{ containerPort = each.value.port, protocol = "tcp" }]
      mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
      linuxParameters        = { initProcessEnabled = true }
      stopTimeout            = each.key == "worker" ? 120 : 30
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.service[each.key].name
          awslogs-region        = data.aws_region.current.name
          awslogs-stream-prefix = each.key
        }
      }
    }
  ])

  volume {
    name = "tmp"
  }

  tags = var.tags
}

resource "aws_ecs_service" "api" {
  name                              = "api"
  cluster                           = aws_ecs_cluster.main.id
  task_definition                   = aws_ecs_task_definition.service["api"].arn
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  desired_count                     = var.api.min_count
  health_check_grace_period_seconds = 30
  enable_execute_command            = false
  propagate_tags                    = "SERVICE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = var.target_group_arn
    container_name   = "api"
    container_port   = 8000
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  lifecycle {
    ignore_changes = [desired_count]
  }

  tags = var.tags
}

resource "aws_ecs_service" "worker" {
  name                   = "worker"
  cluster                = aws_ecs_cluster.main.id
  task_definition        = aws_ecs_task_definition.service["worker"].arn
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  desired_count          = var.worker.min_count
  enable_execute_command = false
  propagate_tags         = "SERVICE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  lifecycle {
    ignore_changes = [desired_count]
  }

  tags = var.tags
}

resource "aws_ecs_service" "trainer" {
  name                   = "trainer"
  cluster                = aws_ecs_cluster.main.id
  task_definition        = aws_ecs_task_definition.service["trainer"].arn
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  desired_count          = var.trainer.count
  enable_execute_command = false
  propagate_tags         = "SERVICE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  tags = var.tags
}

# Exactly one beat: a deploy stops the old task before starting the new one, so the schedule
# never runs twice.
resource "aws_ecs_service" "beat" {
  name                               = "beat"
  cluster                            = aws_ecs_cluster.main.id
  task_definition                    = aws_ecs_task_definition.service["beat"].arn
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  desired_count                      = 1
  deployment_minimum_healthy_percent = 0
  deployment_maximum_percent         = 100
  enable_execute_command             = false
  propagate_tags                     = "SERVICE"

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  tags = var.tags
}

# --- autoscaling ------------------------------------------------------------------------------
resource "aws_appautoscaling_target" "api" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.api.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.api.min_count
  max_capacity       = var.api.max_count
}

resource "aws_appautoscaling_policy" "api_cpu" {
  name               = "${var.name}-api-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  resource_id        = aws_appautoscaling_target.api.resource_id
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = 55
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "api_requests" {
  name               = "${var.name}-api-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  resource_id        = aws_appautoscaling_target.api.resource_id
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.api.requests_per_task
    scale_in_cooldown  = 300
    scale_out_cooldown = 60
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${var.alb_arn_suffix}/${var.target_group_arn_suffix}"
    }
  }
}

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.worker.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.worker.min_count
  max_capacity       = var.worker.max_count
}

resource "aws_appautoscaling_policy" "worker_cpu" {
  name               = "${var.name}-worker-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  resource_id        = aws_appautoscaling_target.worker.resource_id
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = 70
    scale_in_cooldown  = 600
    scale_out_cooldown = 120
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}
