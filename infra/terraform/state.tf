# DynamoDB: on-demand, point-in-time recovery, encrypted with the CALI key, protected from deletion.
#   checkpoints: HASH shard_key: per-shard checkpoints and KCL-style shard leases (owner, counter).
#   state:       HASH pk, RANGE sk: incident windows, template groups, watermarks, flush intents, LLM budget.
#   outbox:      HASH pk, RANGE seq: the alert outbox (see cali/state/dynamodb_outbox.py).
locals {
  tables = {
    checkpoints = { hash = { name = "shard_key", type = "S" }, range = null }
    state       = { hash = { name = "pk", type = "S" }, range = { name = "sk", type = "S" } }
    outbox      = { hash = { name = "pk", type = "S" }, range = { name = "seq", type = "N" } }
  }
}

resource "aws_dynamodb_table" "this" {
  for_each = local.tables

  name                        = "${var.name}-${each.key}"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = each.value.hash.name
  range_key                   = each.value.range == null ? null : each.value.range.name
  deletion_protection_enabled = true

  attribute {
    name = each.value.hash.name
    type = each.value.hash.type
  }

  dynamic "attribute" {
    for_each = each.value.range == null ? [] : [each.value.range]
    content {
      name = attribute.value.name
      type = attribute.value.type
    }
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.cali.arn
  }
}
