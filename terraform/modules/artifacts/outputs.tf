output "bucket" {
  description = "Name of the model-artifact bucket."
  value       = aws_s3_bucket.artifacts.id
}

output "bucket_arn" {
  description = "ARN of the model-artifact bucket, for the task role's policy."
  value       = aws_s3_bucket.artifacts.arn
}
