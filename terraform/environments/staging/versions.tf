terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # State in S3, encrypted, with a DynamoDB lock. The bucket and table are created once per
  # account by hand (docs/operations.md, "First deploy"); pass them at init:
  #   terraform init -backend-config="bucket=<state bucket>" -backend-config="dynamodb_table=<lock table>"
  backend "s3" {
    key     = "rankwell/staging/terraform.tfstate"
    region  = "eu-west-1"
    encrypt = true
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Application = "rankwell"
      Environment = "staging"
      ManagedBy   = "terraform"
    }
  }
}
