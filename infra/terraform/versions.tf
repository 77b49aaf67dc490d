# Terraform and provider versions. State lives in S3 (bootstrap/ creates the bucket); the bucket name
# and key come from `-backend-config` (envs/<env>.s3.tfbackend), so no account is written here.
terraform {
  required_version = ">= 1.10.0" # S3-native state locking (use_lockfile)

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.28" # the EKS 21.x and VPC 6.x modules need >= 6.28
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }

  backend "s3" {}
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      Project     = "cali"
      Environment = var.environment
      ManagedBy   = "terraform"
    })
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_availability_zones" "available" {
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  azs        = slice(data.aws_availability_zones.available.names, 0, var.az_count)
  # Bucket names are global: the account id (read at plan time, never written down) keeps them unique.
  bucket_suffix = "${local.account_id}-${var.region}"
}
