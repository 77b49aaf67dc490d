# OpenSearch: every log line (through Firehose) for search and dashboards. In the VPC, encrypted at rest
# and in transit, fine-grained access control with an IAM master role; reachable only from the nodes
# (OpenSearch Dashboards through a port-forward or a bastion) and from Firehose.
resource "aws_security_group" "opensearch" {
  name        = "${var.name}-opensearch"
  description = "OpenSearch domain: HTTPS from EKS nodes and Firehose"
  vpc_id      = module.vpc.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "opensearch_from_nodes" {
  security_group_id            = aws_security_group.opensearch.id
  description                  = "HTTPS from EKS nodes (Grafana, Dashboards proxy)"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = module.eks.node_security_group_id
}

resource "aws_vpc_security_group_ingress_rule" "opensearch_from_firehose" {
  security_group_id            = aws_security_group.opensearch.id
  description                  = "HTTPS from Firehose"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.firehose.id
}

resource "aws_cloudwatch_log_group" "opensearch" {
  for_each          = toset(["index-slow", "search-slow", "es-application", "audit"])
  name              = "/aws/opensearch/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.cali.arn
}

data "aws_iam_policy_document" "opensearch_logs" {
  statement {
    actions   = ["logs:PutLogEvents", "logs:CreateLogStream"]
    resources = [for g in aws_cloudwatch_log_group.opensearch : "${g.arn}:*"]
    principals {
      type        = "Service"
      identifiers = ["es.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "opensearch" {
  policy_name     = "${var.name}-opensearch"
  policy_document = data.aws_iam_policy_document.opensearch_logs.json
}

# The fine-grained access control master: an IAM role people assume to administer the security plugin
# (map the Firehose role to a writer role, Grafana to a reader role: docs/deploy.md).
data "aws_iam_policy_document" "opensearch_admin_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

resource "aws_iam_role" "opensearch_admin" {
  name               = "${var.name}-opensearch-admin"
  assume_role_policy = data.aws_iam_policy_document.opensearch_admin_trust.json
}

data "aws_iam_policy_document" "opensearch_access" {
  statement {
    actions   = ["es:ESHttp*"]
    resources = ["arn:${local.partition}:es:${var.region}:${local.account_id}:domain/${var.name}-logs/*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

resource "aws_opensearch_domain" "logs" {
  domain_name    = "${var.name}-logs"
  engine_version = "OpenSearch_2.19"

  cluster_config {
    instance_type          = var.opensearch_instance_type
    instance_count         = var.opensearch_instance_count
    zone_awareness_enabled = var.opensearch_instance_count > 1
    # Dedicated masters keep the cluster state stable under load; worth it from production size up.
    dedicated_master_enabled = var.opensearch_dedicated_master_count > 0
    dedicated_master_count   = var.opensearch_dedicated_master_count > 0 ? var.opensearch_dedicated_master_count : null
    dedicated_master_type    = var.opensearch_dedicated_master_count > 0 ? var.opensearch_dedicated_master_type : null
    dynamic "zone_awareness_config" {
      for_each = var.opensearch_instance_count > 1 ? [1] : []
      content {
        availability_zone_count = min(var.opensearch_instance_count, var.az_count)
      }
    }
  }

  ebs_options {
    ebs_enabled = true
    volume_type = "gp3"
    volume_size = var.opensearch_volume_gb
  }

  vpc_options {
    subnet_ids         = slice(module.vpc.private_subnets, 0, min(var.opensearch_instance_count, var.az_count))
    security_group_ids = [aws_security_group.opensearch.id]
  }

  encrypt_at_rest {
    enabled    = true
    kms_key_id = aws_kms_key.cali.arn
  }

  node_to_node_encryption {
    enabled = true
  }

  domain_endpoint_options {
    enforce_https       = true
    tls_security_policy = "Policy-Min-TLS-1-2-PFS-2023-10"
  }

  advanced_security_options {
    enabled                        = true
    anonymous_auth_enabled         = false
    internal_user_database_enabled = false
    master_user_options {
      master_user_arn = aws_iam_role.opensearch_admin.arn
    }
  }

  access_policies = data.aws_iam_policy_document.opensearch_access.json

  log_publishing_options {
    log_type                 = "INDEX_SLOW_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.opensearch["index-slow"].arn
    enabled                  = true
  }

  log_publishing_options {
    log_type                 = "SEARCH_SLOW_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.opensearch["search-slow"].arn
    enabled                  = true
  }

  log_publishing_options {
    log_type                 = "ES_APPLICATION_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.opensearch["es-application"].arn
    enabled                  = true
  }

  log_publishing_options {
    log_type                 = "AUDIT_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.opensearch["audit"].arn
    enabled                  = true
  }

  depends_on = [aws_cloudwatch_log_resource_policy.opensearch]
}
