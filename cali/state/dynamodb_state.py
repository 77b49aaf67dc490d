"""StateStore on DynamoDB: JSON blobs by key (gzip beyond 390 KB) with an optimistic version."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from cali.core.clock import SystemClock
from cali.core.ports import Clock, Health
from cali.state import StateTooLarge, VersionConflict, aws_error, describe_table, dynamodb_table_health, encode_state

DEFAULT_TABLE = "cali-state"
HASH_KEY = "key"
# DynamoDB's item limit is 400 KB (409,600 bytes) counting attribute names and the other attributes;
# 390 KB for the blob leaves room for the key (<= 2 KB), version and timestamps.
MAX_BLOB_BYTES = 390 * 1024

_CREATE = ("aws dynamodb create-table --table-name {table} --attribute-definitions "
           "AttributeName=key,AttributeType=S --key-schema AttributeName=key,KeyType=HASH "
           "--billing-mode PAY_PER_REQUEST")
_HINTS = {
    "ResourceNotFoundException": "the table does not exist: create it with " + _CREATE,
    "AccessDeniedException": "grant dynamodb:GetItem/UpdateItem/DescribeTable on table {table}",
    "UnrecognizedClientException": "check the AWS credentials used by the pipeline",
    "ProvisionedThroughputExceededException": "the table is throttled: raise its capacity or use on-demand",
    "ValidationException": "the table's key schema must be HASH key (S): " + _CREATE,
}
# KEY and VALUE are DynamoDB reserved words: every name goes through a placeholder.
_NAMES = {"#k": HASH_KEY, "#v": "value", "#gz": "value_gz", "#ver": "version", "#at": "updated_at"}


class DynamoDBState:
    """State blobs in `table`. `client` is a boto3 DynamoDB client (low-level API).

    Items: key, value (S, the JSON) or value_gz (B, gzip of the JSON when it exceeds 390 KB), version (N),
    updated_at. `save(key, value)` always wins; `save(key, value, expected_version=n)` is conditional on
    the stored version being n (0 = the key must not exist) and raises VersionConflict otherwise.
    """

    def __init__(self, client: Any, table: str = DEFAULT_TABLE, clock: Clock | None = None) -> None:
        self._ddb = client
        self.table = table
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"DynamoDBState(table={self.table!r})"

    def load_versioned(self, key: str) -> tuple[dict[str, Any], int] | None:
        """GetItem with ConsistentRead: (value, version), or None if the key was never saved."""
        try:
            item = self._ddb.get_item(TableName=self.table, Key={HASH_KEY: {"S": key}},
                                      ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise aws_error("GetItem", self.table, exc, _HINTS) from exc
        if not item:
            return None
        gz = item.get("value_gz")
        raw = gzip.decompress(gz["B"]) if gz else item["value"]["S"].encode("utf-8")
        return orjson.loads(raw), int(item["version"]["N"])

    def load(self, key: str) -> dict[str, Any] | None:
        found = self.load_versioned(key)
        return found[0] if found else None

    def save(self, key: str, value: dict[str, Any], expected_version: int | None = None) -> int:
        """UpdateItem (conditional on version when expected_version is given); returns the new version."""
        body = encode_state(key, value)
        if len(body) <= MAX_BLOB_BYTES:
            store, drop, val = "#v", "#gz", {"S": body.decode("utf-8")}
        else:
            packed = gzip.compress(body, compresslevel=6, mtime=0)
            if len(packed) > MAX_BLOB_BYTES:
                raise StateTooLarge(
                    f"state {key!r} is {len(body):,} bytes of JSON, {len(packed):,} gzipped: over the "
                    f"{MAX_BLOB_BYTES:,}-byte limit of a DynamoDB item; trim it (keep fewer templates or "
                    "groups) or store it in S3 and keep a pointer here")
            store, drop, val = "#gz", "#v", {"B": packed}
        args: dict[str, Any] = {
            "TableName": self.table,
            "Key": {HASH_KEY: {"S": key}},
            "UpdateExpression": f"SET {store} = :val, #ver = if_not_exists(#ver, :zero) + :one, #at = :now "
                                f"REMOVE {drop}",
            "ExpressionAttributeNames": {n: _NAMES[n] for n in (store, drop, "#ver", "#at")},
            "ExpressionAttributeValues": {":val": val, ":zero": {"N": "0"}, ":one": {"N": "1"},
                                          ":now": {"S": self._clock.now().isoformat()}},
            "ReturnValues": "UPDATED_NEW",
        }
        if expected_version is not None:
            if expected_version == 0:
                args["ConditionExpression"] = "attribute_not_exists(#k)"
                args["ExpressionAttributeNames"]["#k"] = HASH_KEY
            else:
                args["ConditionExpression"] = "#ver = :expected"
                args["ExpressionAttributeValues"][":expected"] = {"N": str(int(expected_version))}
            args["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            resp = self._ddb.update_item(**args)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                old = exc.response.get("Item")
                actual = int(old["version"]["N"]) if old and "version" in old else None
                if old is None:  # older DynamoDB-compatible servers do not return the item
                    found = self.load_versioned(key)
                    actual = found[1] if found else None
                raise VersionConflict(key, int(expected_version or 0), actual) from None
            raise aws_error("UpdateItem", self.table, exc, _HINTS) from exc
        except BotoCoreError as exc:
            raise aws_error("UpdateItem", self.table, exc, _HINTS) from exc
        return int(resp["Attributes"]["version"]["N"])

    def healthcheck(self) -> Health:
        """DescribeTable: exists, ACTIVE, keyed by its HASH key (S)."""
        describe = describe_table(self._ddb, self.table, _HINTS)
        return dynamodb_table_health(f"dynamodb-state:{self.table}", describe, self.table, {HASH_KEY: "HASH"}, _CREATE)


__all__ = ["DEFAULT_TABLE", "MAX_BLOB_BYTES", "DynamoDBState"]
