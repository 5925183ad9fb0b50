# Non-secret settings of staging. image_tag comes from the deploy job.
allowed_hosts = ["api.staging.rankwell.example"]
# certificate_arn is account-specific: pass -var certificate_arn=... or set TF_VAR_certificate_arn.
