# Non-secret settings of production. image_tag comes from the deploy job.
allowed_hosts = ["api.rankwell.example"]
# certificate_arn is account-specific: pass -var certificate_arn=... or set TF_VAR_certificate_arn.
