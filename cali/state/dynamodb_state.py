"""StateStore on DynamoDB: JSON documents by (pk scope, sk name), written with TransactWriteItems."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from cali.core.clock import SystemClock
from cali.core.ports import Clock, Health
from cali.state import (
    MAX_ITEM_BYTES,
    SINGLE,
    StateTooLarge,
    VersionConflict,
    aws_error,
    check_item_size,
    describe_table,
    dynamodb_table_health,
    encode_state,
)

DEFAULT_TABLE = "cali-state"
HASH_KEY, RANGE_KEY = "pk", "sk"
# TransactWriteItems takes at most 100 actions and 4 MB; a commit larger than that goes in chunks.
MAX_TRANSACT_ITEMS = 100
MAX_TRANSACT_BYTES = 3_500_000

_CREATE = ("aws dynamodb create-table --table-name {table} --attribute-definitions "
           "AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S --key-schema "
           "AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE --billing-mode PAY_PER_REQUEST")
_HINTS = {
    "ResourceNotFoundException": "the table does not exist: create it with " + _CREATE,
    "AccessDeniedException": "grant dynamodb:GetItem/PutItem/UpdateItem/DeleteItem/Query/ConditionCheckItem/"
                             "DescribeTable on table {table}",
    "UnrecognizedClientException": "check the AWS credentials used by the pipeline",
    "ProvisionedThroughputExceededException": "the table is throttled: raise its capacity or use on-demand",
    "ValidationException": "the table's key schema must be HASH pk (S), RANGE sk (S): " + _CREATE,
}
# VALUE and others are DynamoDB reserved words: every name goes through a placeholder.
_NAMES = {"#pk": HASH_KEY, "#v": "value", "#gz": "value_gz", "#ver": "version", "#at": "updated_at"}


class DynamoDBState:
    """State documents in `table`. `client` is a boto3 DynamoDB client (low-level API).

    Items: pk (the scope, or the key of a single document), sk (the item's name; "#" for a single
    document), value (S, the JSON) or value_gz (B, gzip of a single document over 390 KB), version (N),
    updated_at. `save(key, value, expected_version=n)` is conditional on the stored version being n.
    """

    def __init__(self, client: Any, table: str = DEFAULT_TABLE, clock: Clock | None = None) -> None:
        self._ddb = client
        self.table = table
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"DynamoDBState(table={self.table!r})"

    @staticmethod
    def _key(pk: str, sk: str) -> dict[str, Any]:
        return {HASH_KEY: {"S": pk}, RANGE_KEY: {"S": sk}}

    def load_versioned(self, key: str) -> tuple[dict[str, Any], int] | None:
        """GetItem with ConsistentRead: (value, version), or None if the key was never saved."""
        try:
            item = self._ddb.get_item(TableName=self.table, Key=self._key(key, SINGLE),
                                      ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as exc:
            raise aws_error("GetItem", self.table, exc, _HINTS) from exc
        if not item:
            return None
        return _value(item), int(item["version"]["N"])

    def load(self, key: str) -> dict[str, Any] | None:
        found = self.load_versioned(key)
        return found[0] if found else None

    def save(self, key: str, value: dict[str, Any], expected_version: int | None = None) -> int:
        """UpdateItem (conditional on version when expected_version is given); returns the new version."""
        body = encode_state(key, value)
        if len(body) <= MAX_ITEM_BYTES:
            store, drop, val = "#v", "#gz", {"S": body.decode("utf-8")}
        else:
            packed = gzip.compress(body, compresslevel=6, mtime=0)
            if len(packed) > MAX_ITEM_BYTES:
                raise StateTooLarge(
                    f"state {key!r} is {len(body):,} bytes of JSON, {len(packed):,} gzipped: over the "
                    f"{MAX_ITEM_BYTES:,}-byte limit of a DynamoDB item; store it as a scope of small items")
            store, drop, val = "#gz", "#v", {"B": packed}
        args: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(key, SINGLE),
            "UpdateExpression": f"SET {store} = :val, #ver = if_not_exists(#ver, :zero) + :one, #at = :now "
                                f"REMOVE {drop}",
            "ExpressionAttributeNames": {n: _NAMES[n] for n in (store, drop, "#ver", "#at")},
            "ExpressionAttributeValues": {":val": val, ":zero": {"N": "0"}, ":one": {"N": "1"},
                                          ":now": {"S": self._clock.now().isoformat()}},
            "ReturnValues": "UPDATED_NEW",
        }
        if expected_version is not None:
            if expected_version == 0:
                args["ConditionExpression"] = "attribute_not_exists(#pk)"
                args["ExpressionAttributeNames"]["#pk"] = HASH_KEY
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

    def load_scope(self, scope: str) -> dict[str, dict[str, Any]]:
        """Query pk=scope (ConsistentRead, every page): the scope's items by name."""
        out: dict[str, dict[str, Any]] = {}
        args: dict[str, Any] = {"TableName": self.table, "KeyConditionExpression": "#pk = :pk",
                                "ExpressionAttributeNames": {"#pk": HASH_KEY},
                                "ExpressionAttributeValues": {":pk": {"S": scope}}, "ConsistentRead": True}
        try:
            while True:
                page = self._ddb.query(**args)
                for item in page.get("Items", []):
                    name = item[RANGE_KEY]["S"]
                    if name != SINGLE:
                        out[name] = _value(item)
                if "LastEvaluatedKey" not in page:
                    return out
                args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as exc:
            raise aws_error("Query", self.table, exc, _HINTS) from exc

    def commit(self, scope: str, puts: Mapping[str, dict[str, Any]], deletes: Iterable[str] = ()) -> None:
        """TransactWriteItems of Put/Delete actions: atomic up to 100 items and 3.5 MB, in order beyond.

        Callers put what must land last (a tracker's watermarks) at the end of `puts`.
        """
        now = self._clock.now().isoformat()
        actions: list[tuple[int, dict[str, Any]]] = []
        names = set(puts)
        for name in deletes:
            if name not in names:
                actions.append((64, {"Delete": {"TableName": self.table, "Key": self._key(scope, name)}}))
        for name, value in puts.items():
            body = check_item_size(scope, name, encode_state(f"{scope}/{name}", value))
            item = {**self._key(scope, name), "value": {"S": body.decode("utf-8")}, "version": {"N": "1"},
                    "updated_at": {"S": now}}
            actions.append((len(body) + 128, {"Put": {"TableName": self.table, "Item": item}}))
        chunk: list[dict[str, Any]] = []
        size = 0
        for n, action in actions:
            if chunk and (len(chunk) == MAX_TRANSACT_ITEMS or size + n > MAX_TRANSACT_BYTES):
                self._transact(chunk)
                chunk, size = [], 0
            chunk.append(action)
            size += n
        if chunk:
            self._transact(chunk)

    def _transact(self, items: list[dict[str, Any]]) -> None:
        try:
            self._ddb.transact_write_items(TransactItems=items)
        except (ClientError, BotoCoreError) as exc:
            raise aws_error("TransactWriteItems", self.table, exc, _HINTS) from exc

    def healthcheck(self) -> Health:
        """DescribeTable: exists, ACTIVE, keyed by HASH pk and RANGE sk."""
        describe = describe_table(self._ddb, self.table, _HINTS)
        return dynamodb_table_health(f"dynamodb-state:{self.table}", describe, self.table,
                                     {HASH_KEY: "HASH", RANGE_KEY: "RANGE"}, _CREATE)


def _value(item: dict[str, Any]) -> dict[str, Any]:
    gz = item.get("value_gz")
    return orjson.loads(gzip.decompress(gz["B"]) if gz else item["value"]["S"].encode("utf-8"))


__all__ = ["DEFAULT_TABLE", "DynamoDBState"]
