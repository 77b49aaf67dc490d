# CloudWatch alarms to an SNS topic: the pipeline falls behind (iterator age), Firehose fails to deliver,
# the DLQ grows. Subscribe e-mail here, or Slack through AWS Chatbot, or PagerDuty, to the topic.
resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = aws_kms_key.cali.arn
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alarm_email == "" ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  alarm_name          = "${var.name}-kinesis-iterator-age"
  alarm_description   = "CALI's readers fall behind the stream: records wait longer than ${var.iterator_age_alarm_ms} ms. Check `cali status` and the Ray dashboard."
  namespace           = "AWS/Kinesis"
  metric_name         = "GetRecords.IteratorAgeMilliseconds"
  dimensions          = { StreamName = aws_kinesis_stream.logs.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.iterator_age_alarm_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching" # no GetRecords at all means no reader is running
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "firehose_opensearch" {
  alarm_name          = "${var.name}-firehose-opensearch-delivery"
  alarm_description   = "Firehose fails to index into OpenSearch; failed documents land in s3://archive/firehose-failed/."
  namespace           = "AWS/Firehose"
  metric_name         = "DeliveryToAmazonOpenSearchService.Success"
  dimensions          = { DeliveryStreamName = aws_kinesis_firehose_delivery_stream.to_opensearch.name }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 2
  threshold           = 0.99
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "notBreaching" # no traffic, nothing to deliver
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "firehose_s3" {
  alarm_name          = "${var.name}-firehose-s3-delivery"
  alarm_description   = "Firehose fails to copy the stream to s3://archive/firehose/."
  namespace           = "AWS/Firehose"
  metric_name         = "DeliveryToS3.Success"
  dimensions          = { DeliveryStreamName = aws_kinesis_firehose_delivery_stream.to_s3.name }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 2
  threshold           = 0.99
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "dlq_growth" {
  alarm_name          = "${var.name}-dlq-growth"
  alarm_description   = "Records rejected by CALI's validation pile up under dlq/ (more than ${var.dlq_objects_alarm} objects in 15 min): a producer changed its format."
  namespace           = "AWS/S3"
  metric_name         = "PutRequests"
  dimensions          = { BucketName = aws_s3_bucket.this["archive"].id, FilterId = aws_s3_bucket_metric.dlq.name }
  statistic           = "Sum"
  period              = 900
  evaluation_periods  = 1
  threshold           = var.dlq_objects_alarm
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}
