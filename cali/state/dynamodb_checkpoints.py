"""The lease table on DynamoDB, KCL style: one item per shard, checkpoint and lease, conditional writes only."""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cali.core.clock import SystemClock
from cali.core.ports import Clock, Health, Lease, LeaseLost
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
# Attribute names go through placeholders: OWNER, COUNTER and others are DynamoDB reserved words.
_NAMES = {"#sk": HASH_KEY, "#seq": "seq", "#raw": "sequence", "#owner": "owner", "#at": "updated_at",
          "#end": "shard_end", "#endat": "ended_at", "#n": "counter"}


def _names(*keys: str) -> dict[str, str]:
    return {k: _NAMES[k] for k in keys}


class DynamoDBCheckpoints:
    """Per-shard leases and checkpoints in `table`. `client` is a boto3 DynamoDB client (low-level API).

    Items: shard_key "<stream>/<shard_id>", owner (the lease holder, absent when free), counter (N, moves on
    every take and renewal), seq (sequence zero-padded to 129 digits, so DynamoDB's byte-wise string
    comparison is numeric order), sequence (as Kinesis gave it), updated_at, shard_end, ended_at.
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

    def _update(self, stream: str, shard_id: str, **args: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """UpdateItem: (the item after, {}) or, when its condition failed, (None, the item as it was)."""
        try:
            resp = self._ddb.update_item(TableName=self.table, Key=self._key(stream, shard_id),
                                         ReturnValues="ALL_NEW", **args)
            return resp.get("Attributes", {}), {}
        except (ClientError, BotoCoreError) as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise aws_error("UpdateItem", self.table, exc, _HINTS) from exc
            return None, getattr(exc, "response", {}).get("Item") or self._get(stream, shard_id)

    def get_checkpoint(self, stream: str, shard_id: str) -> str | None:
        """GetItem with ConsistentRead: the last sequence number checkpointed for the shard, or None."""
        item = self._get(stream, shard_id)
        return unpad_sequence(item["seq"]["S"]) if "seq" in item else None

    def get_lease(self, stream: str, shard_id: str) -> Lease:
        """GetItem with ConsistentRead; a shard never seen is a free lease at counter 0."""
        return _lease(shard_key(stream, shard_id), self._get(stream, shard_id))

    def take_lease(self, stream: str, shard_id: str, owner: str, expected_counter: int) -> Lease | None:
        """UpdateItem owner, counter+1, conditional on the counter still being `expected_counter`."""
        cond = "attribute_not_exists(#n) OR #n = :exp" if expected_counter == 0 else "#n = :exp"
        got, _ = self._update(stream, shard_id, UpdateExpression="SET #owner = :o, #n = :next, #at = :now",
                           ConditionExpression=cond, ExpressionAttributeNames=_names("#owner", "#n", "#at"),
                           ExpressionAttributeValues={":o": {"S": owner}, ":exp": {"N": str(expected_counter)},
                                                      ":next": {"N": str(expected_counter + 1)},
                                                      ":now": {"S": self._now()}},
                           ReturnValuesOnConditionCheckFailure="ALL_OLD")
        return None if got is None else _lease(shard_key(stream, shard_id), got)

    def renew_lease(self, stream: str, shard_id: str, owner: str, counter: int) -> int | None:
        """UpdateItem counter+1, conditional on `owner` holding it at `counter`."""
        got, _ = self._update(stream, shard_id, UpdateExpression="SET #n = :next, #at = :now",
                           ConditionExpression="#owner = :o AND #n = :c",
                           ExpressionAttributeNames=_names("#owner", "#n", "#at"),
                           ExpressionAttributeValues={":o": {"S": owner}, ":c": {"N": str(counter)},
                                                      ":next": {"N": str(counter + 1)}, ":now": {"S": self._now()}})
        return None if got is None else counter + 1

    def release_lease(self, stream: str, shard_id: str, owner: str, counter: int) -> bool:
        """UpdateItem REMOVE owner, counter+1: free at once for the next worker (a graceful hand-off)."""
        got, _ = self._update(stream, shard_id, UpdateExpression="SET #n = :next, #at = :now REMOVE #owner",
                           ConditionExpression="#owner = :o AND #n = :c",
                           ExpressionAttributeNames=_names("#owner", "#n", "#at"),
                           ExpressionAttributeValues={":o": {"S": owner}, ":c": {"N": str(counter)},
                                                      ":next": {"N": str(counter + 1)}, ":now": {"S": self._now()}})
        return got is not None

    def put_checkpoint(self, stream: str, shard_id: str, sequence: str, owner: str) -> bool:
        """UpdateItem conditional on `owner` holding the lease and the stored sequence being lower.

        Returns True if the checkpoint advanced, False if it was already there or beyond (a replayed
        batch); raises LeaseLost if another worker holds the lease: its writes are fenced off.
        """
        padded = pad_sequence(sequence)
        got, old = self._update(stream, shard_id, UpdateExpression="SET #seq = :seq, #raw = :raw, #at = :now",
                           ConditionExpression="#owner = :o AND (attribute_not_exists(#seq) OR #seq < :seq)",
                           ExpressionAttributeNames=_names("#seq", "#raw", "#owner", "#at"),
                           ExpressionAttributeValues={":seq": {"S": padded}, ":raw": {"S": sequence},
                                                      ":o": {"S": owner}, ":now": {"S": self._now()}},
                           ReturnValuesOnConditionCheckFailure="ALL_OLD")
        if got is not None:
            return True
        holder = old.get("owner", {}).get("S")
        if holder != owner:
            raise LeaseLost(f"checkpoint {stream}/{shard_id} at {sequence} refused: the lease is held by "
                            f"{holder or 'nobody'}, not {owner}")
        stored = old.get("sequence", {}).get("S") or unpad_sequence(old.get("seq", {}).get("S", "0"))
        if pad_sequence(stored) != padded:
            log.warning("stale checkpoint ignored: %s/%s is at %s; %s tried to write %s",
                        stream, shard_id, stored, owner, sequence)
        return False

    def mark_shard_end(self, stream: str, shard_id: str) -> None:
        """UpdateItem shard_end=true: the shard is closed and fully processed (children may start)."""
        now = self._now()
        try:
            self._ddb.update_item(
                TableName=self.table, Key=self._key(stream, shard_id),
                UpdateExpression="SET #end = :t, #endat = if_not_exists(#endat, :now), #at = :now",
                ExpressionAttributeNames=_names("#end", "#endat", "#at"),
                ExpressionAttributeValues={":t": {"BOOL": True}, ":now": {"S": now}})
        except (ClientError, BotoCoreError) as exc:
            raise aws_error("UpdateItem", self.table, exc, _HINTS) from exc

    def is_shard_ended(self, stream: str, shard_id: str) -> bool:
        """GetItem with ConsistentRead."""
        return bool(self._get(stream, shard_id).get("shard_end", {}).get("BOOL", False))

    def _now(self) -> str:
        return self._clock.now().isoformat()

    def healthcheck(self) -> Health:
        """DescribeTable: exists, ACTIVE, keyed by its HASH key (S)."""
        describe = describe_table(self._ddb, self.table, _HINTS)
        name = f"dynamodb-checkpoints:{self.table}"
        return dynamodb_table_health(name, describe, self.table, {HASH_KEY: "HASH"}, _CREATE)


def _lease(key: str, item: dict[str, Any]) -> Lease:
    return Lease(key=key, owner=item.get("owner", {}).get("S") or None,
                 counter=int(item.get("counter", {}).get("N", 0)),
                 checkpoint=unpad_sequence(item["seq"]["S"]) if "seq" in item else None,
                 ended=bool(item.get("shard_end", {}).get("BOOL", False)))


def _code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


__all__ = ["DEFAULT_TABLE", "DynamoDBCheckpoints"]
