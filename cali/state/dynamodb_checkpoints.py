"""CheckpointStore on DynamoDB, KCL lease-table style: one item per shard, conditional writes only forward."""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cali.core.clock import SystemClock
from cali.core.ports import Clock, Health
from cali.state import aws_error, describe_table, dynamodb_table_health, pad_sequence, shard_key, unpad_sequence

log = logging.getLogger(__name__)

DEFAULT_TABLE = "cali-checkpoints"
HASH_KEY = "shard_key"

_CREATE = ("aws dynamodb create-table --table-name {table} --attribute-definitions "
           "AttributeName=shard_key,AttributeType=S --key-schema AttributeName=shard_key,KeyType=HASH "
           "--billing-mode PAY_PER_REQUEST")
_HINTS = {
    "ResourceNotFoundException": "the table does not exist: create it with " + _CREATE,
    "AccessDeniedException": "grant dynamodb:GetItem/UpdateItem/DescribeTable on table {table}",
    "UnrecognizedClientException": "check the AWS credentials used by the pipeline",
    "ProvisionedThroughputExceededException": "the table is throttled: raise its capacity or use on-demand",
    "ValidationException": "the table's key schema must be HASH shard_key (S): " + _CREATE,
}
# Attribute names go through placeholders: OWNER and others are DynamoDB reserved words.
_NAMES = {"#sk": HASH_KEY, "#seq": "seq", "#raw": "sequence", "#owner": "owner", "#at": "updated_at",
          "#end": "shard_end", "#endat": "ended_at"}


class DynamoDBCheckpoints:
    """Per-shard checkpoints in `table`. `client` is a boto3 DynamoDB client (low-level API).

    Items: shard_key "<stream>/<shard_id>", seq (sequence zero-padded to 129 digits, so DynamoDB's
    byte-wise string comparison is numeric order), sequence (as Kinesis gave it), owner, updated_at,
    shard_end, ended_at.
    """

    def __init__(self, client: Any, table: str = DEFAULT_TABLE, clock: Clock | None = None) -> None:
        self._ddb = client
        self.table = table
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"DynamoDBCheckpoints(table={self.table!r})"

    def _key(self, stream: str, shard_id: str) -> dict[str, Any]:
        return {HASH_KEY: {"S": shard_key(stream, shard_id)}}

    def _get(self, stream: str, shard_id: str) -> dict[str, Any]:
        try:
            resp = self._ddb.get_item(TableName=self.table, Key=self._key(stream, shard_id),
                                      ConsistentRead=True)
        except (ClientError, BotoCoreError) as exc:
            raise aws_error("GetItem", self.table, exc, _HINTS) from exc
        return resp.get("Item") or {}

    def get_checkpoint(self, stream: str, shard_id: str) -> str | None:
        """GetItem with ConsistentRead: the last sequence number checkpointed for the shard, or None."""
        item = self._get(stream, shard_id)
        return unpad_sequence(item["seq"]["S"]) if "seq" in item else None

    def put_checkpoint(self, stream: str, shard_id: str, sequence: str, owner: str) -> bool:
        """UpdateItem conditional on the stored sequence being lower (or absent).

        Returns True if the checkpoint advanced. A write at or below the stored sequence changes nothing
        and returns False (a stale writer, e.g. a restarted reader replaying a batch, is not an error).
        """
        padded = pad_sequence(sequence)
        now = self._clock.now().isoformat()
        try:
            self._ddb.update_item(
                TableName=self.table,
                Key=self._key(stream, shard_id),
                UpdateExpression="SET #seq = :seq, #raw = :raw, #owner = :owner, #at = :now",
                ConditionExpression="attribute_not_exists(#sk) OR attribute_not_exists(#seq) OR #seq < :seq",
                ExpressionAttributeNames={k: _NAMES[k] for k in ("#sk", "#seq", "#raw", "#owner", "#at")},
                ExpressionAttributeValues={":seq": {"S": padded}, ":raw": {"S": sequence},
                                           ":owner": {"S": owner}, ":now": {"S": now}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return True
        except (ClientError, BotoCoreError) as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise aws_error("UpdateItem", self.table, exc, _HINTS) from exc
            old = getattr(exc, "response", {}).get("Item") or self._get(stream, shard_id)
        stored = old.get("sequence", {}).get("S") or unpad_sequence(old.get("seq", {}).get("S", "0"))
        if pad_sequence(stored) == padded:
            log.debug("checkpoint %s/%s already at %s", stream, shard_id, sequence)
        else:
            log.warning("stale checkpoint ignored: %s/%s is at %s (owner %s); %s tried to write %s",
                        stream, shard_id, stored, old.get("owner", {}).get("S"), owner, sequence)
        return False

    def mark_shard_end(self, stream: str, shard_id: str) -> None:
        """UpdateItem shard_end=true: the shard is closed and fully processed (children may start)."""
        now = self._clock.now().isoformat()
        try:
            self._ddb.update_item(
                TableName=self.table,
                Key=self._key(stream, shard_id),
                UpdateExpression="SET #end = :t, #endat = if_not_exists(#endat, :now), #at = :now",
                ExpressionAttributeNames={k: _NAMES[k] for k in ("#end", "#endat", "#at")},
                ExpressionAttributeValues={":t": {"BOOL": True}, ":now": {"S": now}},
            )
        except (ClientError, BotoCoreError) as exc:
            raise aws_error("UpdateItem", self.table, exc, _HINTS) from exc

    def is_shard_ended(self, stream: str, shard_id: str) -> bool:
        """GetItem with ConsistentRead."""
        return bool(self._get(stream, shard_id).get("shard_end", {}).get("BOOL", False))

    def healthcheck(self) -> Health:
        """DescribeTable: exists, ACTIVE, keyed by its HASH key (S)."""
        describe = describe_table(self._ddb, self.table, _HINTS)
        name = f"dynamodb-checkpoints:{self.table}"
        return dynamodb_table_health(name, describe, self.table, {HASH_KEY: "HASH"}, _CREATE)


def _code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


__all__ = ["DEFAULT_TABLE", "DynamoDBCheckpoints"]
