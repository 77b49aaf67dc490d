# The Kinesis stream CALI reads (one ShardReader per shard), and two Firehose delivery streams:
#   <name>-logs-to-s3:         reads the Kinesis stream, keeps a raw copy under firehose/ (as the local stack does);
#   <name>-logs-to-opensearch: Fluent Bit's kinesis_firehose output (DirectPut) indexes every log line into
#                              OpenSearch; documents OpenSearch rejects are kept under firehose-failed/.
# A delivery stream has one destination, hence two.
resource "aws_kinesis_stream" "logs" {
  name             = "${var.name}-logs"
  shard_count      = var.kinesis_on_demand ? null : var.kinesis_shard_count
  retention_period = var.kinesis_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.cali.arn

  stream_mode_details {
    stream_mode = var.kinesis_on_demand ? "ON_DEMAND" : "PROVISIONED"
  }
}

resource "aws_cloudwatch_log_group" "firehose" {
  name              = "/aws/kinesisfirehose/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.cali.arn
}

resource "aws_cloudwatch_log_stream" "firehose_s3" {
  name           = "logs-to-s3"
  log_group_name = aws_cloudwatch_log_group.firehose.name
}

resource "aws_cloudwatch_log_stream" "firehose_opensearch" {
  name           = "logs-to-opensearch"
  log_group_name = aws_cloudwatch_log_group.firehose.name
}

resource "aws_kinesis_firehose_delivery_stream" "to_s3" {
  name        = "${var.name}-logs-to-s3"
  destination = "extended_s3"

  kinesis_source_configuration {
    kinesis_stream_arn = aws_kinesis_stream.logs.arn
    role_arn           = aws_iam_role.firehose.arn
  }

  extended_s3_configuration {
    role_arn            = aws_iam_role.firehose.arn
    bucket_arn          = aws_s3_bucket.this["archive"].arn
    prefix              = "firehose/dt=!{timestamp:yyyy-MM-dd}/"
    error_output_prefix = "firehose-errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"
    buffering_size      = 64
    buffering_interval  = 300
    compression_format  = "GZIP"
    kms_key_arn         = aws_kms_key.cali.arn

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.firehose_s3.name
    }
  }
}

resource "aws_kinesis_firehose_delivery_stream" "to_opensearch" {
  name        = "${var.name}-logs-to-opensearch"
  destination = "opensearch"

  server_side_encryption {
    enabled  = true
    key_type = "CUSTOMER_MANAGED_CMK"
    key_arn  = aws_kms_key.cali.arn
  }

  opensearch_configuration {
    domain_arn            = aws_opensearch_domain.logs.arn
    role_arn              = aws_iam_role.firehose.arn
    index_name            = "cali-logs"
    index_rotation_period = var.opensearch_index_rotation
    buffering_size        = 5
    buffering_interval    = 60
    retry_duration        = 300
    s3_backup_mode        = "FailedDocumentsOnly"

    s3_configuration {
      role_arn           = aws_iam_role.firehose.arn
      bucket_arn         = aws_s3_bucket.this["archive"].arn
      prefix             = "firehose-failed/"
      compression_format = "GZIP"
      kms_key_arn        = aws_kms_key.cali.arn
    }

    vpc_config {
      subnet_ids         = module.vpc.private_subnets
      security_group_ids = [aws_security_group.firehose.id]
      role_arn           = aws_iam_role.firehose.arn
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.firehose_opensearch.name
    }
  }
}

resource "aws_security_group" "firehose" {
  name        = "${var.name}-firehose"
  description = "Firehose ENIs that deliver to the OpenSearch domain"
  vpc_id      = module.vpc.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "firehose_to_opensearch" {
  security_group_id            = aws_security_group.firehose.id
  description                  = "HTTPS to the OpenSearch domain"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.opensearch.id
}
