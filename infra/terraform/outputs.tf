output "region" {
  description = "AWS region."
  value       = var.region
}

output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name ...)."
  value       = module.eks.cluster_name
}

output "ecr_repository_url" {
  description = "Where CI pushes the image."
  value       = aws_ecr_repository.cali.repository_url
}

output "alarm_topic_arn" {
  description = "SNS topic of the CloudWatch alarms."
  value       = aws_sns_topic.alarms.arn
}

output "opensearch_endpoint" {
  description = "OpenSearch domain endpoint (in the VPC)."
  value       = aws_opensearch_domain.logs.endpoint
}

output "opensearch_admin_role_arn" {
  description = "Assume this role to administer OpenSearch's security plugin (role mappings)."
  value       = aws_iam_role.opensearch_admin.arn
}

output "firehose_role_arn" {
  description = "Map this role to an index-writer role in OpenSearch (docs/deploy.md)."
  value       = aws_iam_role.firehose.arn
}

output "milvus_role_arn" {
  description = "IRSA role of the milvus/milvus service account (k8s/milvus/values.yaml)."
  value       = aws_iam_role.milvus.arn
}

output "lb_controller_role_arn" {
  description = "Role of the AWS Load Balancer Controller (kube-system/aws-load-balancer-controller)."
  value       = module.lb_controller_pod_identity.iam_role_arn
}

output "github_role_arns" {
  description = "Roles the GitHub workflows assume (set them as repository variables)."
  value       = { for k, r in aws_iam_role.github : k => r.arn }
}

# Every ${NAME} placeholder in k8s/ is filled from this map by
# `python -m cali.deploy.kuberay render --tf-outputs <terraform output -json> --image <uri:tag>`;
# a test checks that the two sides name the same keys.
output "k8s_values" {
  description = "Values for the Kubernetes manifests' placeholders."
  value = {
    AWS_REGION               = var.region
    CALI_ENV                 = var.environment
    KINESIS_STREAM           = aws_kinesis_stream.logs.name
    FIREHOSE_STREAM          = aws_kinesis_firehose_delivery_stream.to_opensearch.name
    ARCHIVE_BUCKET           = aws_s3_bucket.this["archive"].id
    REPORTS_BUCKET           = aws_s3_bucket.this["reports"].id
    MILVUS_BUCKET            = aws_s3_bucket.this["milvus"].id
    MILVUS_ROLE_ARN          = aws_iam_role.milvus.arn
    CHECKPOINT_TABLE         = aws_dynamodb_table.this["checkpoints"].name
    STATE_TABLE              = aws_dynamodb_table.this["state"].name
    OUTBOX_TABLE             = aws_dynamodb_table.this["outbox"].name
    SECRET_SLACK_WEBHOOK     = aws_secretsmanager_secret.app["slack-webhook"].name
    SECRET_SLACK_BOT_TOKEN   = aws_secretsmanager_secret.app["slack-bot-token"].name
    SECRET_LLM_API_KEY       = aws_secretsmanager_secret.app["llm-api-key"].name
    SECRET_ANALYZE_API_TOKEN = aws_secretsmanager_secret.app["analyze-api-token"].name
    SECRET_MILVUS_TOKEN      = aws_secretsmanager_secret.app["milvus-token"].name
    SECRET_REDIS_AUTH        = aws_secretsmanager_secret.redis_auth.name
    REDIS_ADDRESS            = "rediss://${aws_elasticache_replication_group.ray_gcs.primary_endpoint_address}:6379"
    LLM_BASE_URL             = var.llm_base_url
    LLM_MODEL                = var.llm_model
    INGRESS_SCHEME           = var.analyze_ingress_scheme
    INGRESS_SOURCE_CIDR      = local.ingress_source_cidr
    INGRESS_ALLOWED_CIDRS    = join(",", var.analyze_allowed_cidrs)
    ACM_CERTIFICATE_ARN      = var.acm_certificate_arn
    OPENSEARCH_ENDPOINT      = aws_opensearch_domain.logs.endpoint
  }
}
