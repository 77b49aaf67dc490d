# One IAM role per Kubernetes service account, each with only what its pods call. Pods get their roles
# through EKS Pod Identity (associations below); Milvus through IRSA, the mechanism its docs support.
#
#   cali/cali-ray         RayService pods: pipeline actors (readers, trackers, alerter) and the Serve apps.
#                         Actors move between Ray pods, so the pods of one RayCluster share one account.
#   cali/cali-reindex     the reindex RayJob's own cluster: reads the archive, writes reports.
#   <fb ns>/<fb sa>       Fluent Bit: puts records on the stream and the OpenSearch delivery stream.
#   <airflow ns>/airflow-worker   optional: the daily DAG's checks and its quality alert.
#   milvus/milvus         Milvus object storage (IRSA).
locals {
  archive_arn = aws_s3_bucket.this["archive"].arn
  reports_arn = aws_s3_bucket.this["reports"].arn
  table_arns  = [for t in aws_dynamodb_table.this : t.arn]
  secret_arns = merge({ for k, s in aws_secretsmanager_secret.app : k => s.arn }, {
    redis-auth = aws_secretsmanager_secret.redis_auth.arn
  })
  pod_roles = merge({
    ray = {
      namespace       = "cali"
      service_account = "cali-ray"
      policy          = data.aws_iam_policy_document.ray.json
    }
    reindex = {
      namespace       = "cali"
      service_account = "cali-reindex"
      policy          = data.aws_iam_policy_document.reindex.json
    }
    fluent-bit = {
      namespace       = var.fluent_bit_namespace
      service_account = var.fluent_bit_service_account
      policy          = data.aws_iam_policy_document.fluent_bit.json
    }
    }, var.airflow_namespace == "" ? {} : {
    airflow = {
      namespace       = var.airflow_namespace
      service_account = "airflow-worker"
      policy          = data.aws_iam_policy_document.airflow.json
    }
  })
}

data "aws_iam_policy_document" "pod_identity_trust" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "pod" {
  for_each           = local.pod_roles
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.pod_identity_trust.json
}

resource "aws_iam_role_policy" "pod" {
  for_each = local.pod_roles
  name     = "${var.name}-${each.key}"
  role     = aws_iam_role.pod[each.key].id
  policy   = each.value.policy
}

resource "aws_eks_pod_identity_association" "pod" {
  for_each        = local.pod_roles
  cluster_name    = module.eks.cluster_name
  namespace       = each.value.namespace
  service_account = each.value.service_account
  role_arn        = aws_iam_role.pod[each.key].arn
}

# The key is usable only through the services CALI calls (S3 writes, Kinesis reads, secrets).
data "aws_iam_policy_document" "kms_via_services" {
  statement {
    sid       = "KeyThroughServices"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.cali.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values = [for s in ["kinesis", "s3", "secretsmanager", "dynamodb"] :
      "${s}.${var.region}.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "ray" {
  source_policy_documents = [data.aws_iam_policy_document.kms_via_services.json]

  statement {
    sid       = "ReadTheStream"
    actions   = ["kinesis:ListShards", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:DescribeStreamSummary"]
    resources = [aws_kinesis_stream.logs.arn]
  }

  statement {
    sid       = "ArchiveAndDlq"
    actions   = ["s3:PutObject"]
    resources = ["${local.archive_arn}/raw/*", "${local.archive_arn}/dlq/*"]
  }

  statement {
    sid       = "ArchiveHealthCheck"
    actions   = ["s3:ListBucket"] # HeadBucket
    resources = [local.archive_arn]
  }

  statement {
    sid = "StateTables"
    actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
    "dynamodb:Query", "dynamodb:ConditionCheckItem", "dynamodb:BatchGetItem", "dynamodb:DescribeTable"]
    resources = local.table_arns
  }

  statement {
    sid     = "Secrets"
    actions = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [for k in ["slack-webhook", "slack-bot-token", "llm-api-key", "analyze-api-token", "milvus-token",
    "redis-auth"] : local.secret_arns[k]]
  }

  # The index (cali/index/opensearch.py): templates, pipeline and ISM policy at start, _bulk and _search,
  # incident documents. Fine-grained access control must also map this role (docs/deploy.md, step 9).
  statement {
    sid       = "Index"
    actions   = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut"]
    resources = ["${aws_opensearch_domain.logs.arn}/*"]
  }
}

data "aws_iam_policy_document" "reindex" {
  source_policy_documents = [data.aws_iam_policy_document.kms_via_services.json]

  statement {
    sid       = "ListArchive"
    actions   = ["s3:ListBucket"]
    resources = [local.archive_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["raw/*"]
    }
  }

  statement {
    sid       = "ReadArchive"
    actions   = ["s3:GetObject"]
    resources = ["${local.archive_arn}/raw/*"]
  }

  statement {
    sid       = "Reports"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:ListBucket"]
    resources = [local.reports_arn, "${local.reports_arn}/*"]
  }

  statement {
    sid       = "Secrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [local.secret_arns["llm-api-key"], local.secret_arns["milvus-token"]]
  }
}

data "aws_iam_policy_document" "fluent_bit" {
  statement {
    sid       = "PutOnTheStream"
    actions   = ["kinesis:PutRecords", "kinesis:PutRecord", "kinesis:DescribeStream"]
    resources = [aws_kinesis_stream.logs.arn]
  }

  statement {
    sid       = "PutOnTheDeliveryStream"
    actions   = ["firehose:PutRecordBatch"]
    resources = [aws_kinesis_firehose_delivery_stream.to_opensearch.arn]
  }

  statement {
    sid       = "EncryptForKinesis"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.cali.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["kinesis.${var.region}.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "airflow" {
  source_policy_documents = [data.aws_iam_policy_document.kms_via_services.json]

  statement {
    sid       = "ListArchive"
    actions   = ["s3:ListBucket"]
    resources = [local.archive_arn]
  }

  statement {
    sid       = "ReadArchive"
    actions   = ["s3:GetObject"]
    resources = ["${local.archive_arn}/raw/*", "${local.archive_arn}/dlq/*"]
  }

  statement {
    sid       = "Reports"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:ListBucket"]
    resources = [local.reports_arn, "${local.reports_arn}/*"]
  }

  statement {
    sid = "QualityAlertToOutbox"
    actions = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query",
    "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable"]
    resources = [aws_dynamodb_table.this["outbox"].arn]
  }
}

# --- Firehose's service role ---------------------------------------------------------------------
data "aws_iam_policy_document" "firehose_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "firehose" {
  name               = "${var.name}-firehose"
  assume_role_policy = data.aws_iam_policy_document.firehose_trust.json
}

data "aws_iam_policy_document" "firehose" {
  source_policy_documents = [data.aws_iam_policy_document.kms_via_services.json]

  statement {
    sid       = "ReadTheStream"
    actions   = ["kinesis:DescribeStream", "kinesis:GetShardIterator", "kinesis:GetRecords", "kinesis:ListShards"]
    resources = [aws_kinesis_stream.logs.arn]
  }

  statement {
    sid       = "Bucket"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [local.archive_arn]
  }

  statement {
    sid       = "Objects"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"]
    resources = ["${local.archive_arn}/firehose/*", "${local.archive_arn}/firehose-errors/*", "${local.archive_arn}/firehose-failed/*"]
  }

  statement {
    sid       = "Index"
    actions   = ["es:DescribeDomain", "es:DescribeDomains", "es:DescribeDomainConfig", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpGet"]
    resources = [aws_opensearch_domain.logs.arn, "${aws_opensearch_domain.logs.arn}/*"]
  }

  statement {
    sid       = "VpcDelivery"
    actions   = ["ec2:DescribeVpcs", "ec2:DescribeVpcAttribute", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeNetworkInterfaces"]
    resources = ["*"] # Describe* calls do not support resource-level permissions
  }

  statement {
    sid       = "VpcEnis"
    actions   = ["ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface"]
    resources = ["*"] # ENIs are created by Firehose in the subnets above; their ids are not known in advance
    condition {
      test     = "StringEquals"
      variable = "ec2:Vpc"
      values   = ["arn:${local.partition}:ec2:${var.region}:${local.account_id}:vpc/${module.vpc.vpc_id}"]
    }
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.firehose.arn}:*"]
  }
}

resource "aws_iam_role_policy" "firehose" {
  name   = "${var.name}-firehose"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose.json
}

# --- Milvus (IRSA) -------------------------------------------------------------------------------
data "aws_iam_policy_document" "milvus_trust" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [module.eks.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:sub"
      values   = ["system:serviceaccount:milvus:milvus"]
    }
    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "milvus" {
  name               = "${var.name}-milvus"
  assume_role_policy = data.aws_iam_policy_document.milvus_trust.json
}

data "aws_iam_policy_document" "milvus" {
  source_policy_documents = [data.aws_iam_policy_document.kms_via_services.json]

  statement {
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.this["milvus"].arn]
  }

  statement {
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.this["milvus"].arn}/*"]
  }
}

resource "aws_iam_role_policy" "milvus" {
  name   = "${var.name}-milvus"
  role   = aws_iam_role.milvus.id
  policy = data.aws_iam_policy_document.milvus.json
}
