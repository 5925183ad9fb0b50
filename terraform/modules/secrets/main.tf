# The application's secrets, in Secrets Manager, encrypted with the environment's key. ECS
# injects them as environment variables at task start; nothing secret is in the task definition.
#
# Values terraform generates (Django's key, the database password, the Redis auth tokens) are
# set here; SENTRY_DSN is set by hand (`aws secretsmanager put-secret-value`, see
# docs/operations.md). Rotation is a runbook step, not a Lambda: rotating means redeploying the
# service anyway, since each process reads its environment once.
resource "random_password" "django_secret_key" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret" "app" {
  #checkov:skip=CKV2_AWS_57:Rotated by the runbook (docs/operations.md, "Rotate secrets"): a new value needs a redeploy, which a rotation Lambda cannot do.
  for_each                = toset(["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SENTRY_DSN"])
  name                    = "${var.name}/${each.key}"
  description             = "${var.name}: the ${each.key} environment variable of every Rankwell process"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days
  tags                    = var.tags
}

resource "aws_secretsmanager_secret_version" "generated" {
  for_each = {
    SECRET_KEY        = random_password.django_secret_key.result
    DATABASE_URL      = var.database_url
    REDIS_URL         = var.redis_url
    CELERY_BROKER_URL = var.celery_broker_url
  }
  secret_id     = aws_secretsmanager_secret.app[each.key].id
  secret_string = each.value
}
