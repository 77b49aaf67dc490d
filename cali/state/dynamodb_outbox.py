"""Outbox on DynamoDB (`cali-outbox`, HASH pk S, RANGE seq N): ordered, idempotent by alert_id.

Items (one table, told apart by pk):
  pk "meta#counter", seq 0   n: the last queue position handed out (atomic ADD; order = counter order)
  pk "alert#<alert_id>", seq 0   the id item: status pending|delivered|dead, qseq, receipt, reason, alert
  pk "queue", seq <qseq>      one per pending alert; Query pk="queue" ascending is the delivery order
  pk "dead", seq <qseq>       dead-lettered alerts with the reason
  pk "incident#<key>", seq 0  alert_id of the latest delivered FIRST alert: the Slack thread to reply in

Order: enqueue reserves one counter value per alert with a single UpdateItem ADD, so positions follow the
enqueue order (several enqueuers interleave by who reserved first; CALI has one alerter per pipeline).
Gaps (a crashed enqueue, a duplicate) are harmless. We chose a counter over created_at-ns + tiebreak
because two alerts of the same nanosecond from different windows would need a tiebreak anyway, and a
clock step backwards would reorder.
Idempotence: the id item and the queue item are written in one TransactWriteItems whose Put of the id item
has `attribute_not_exists(pk)`: a replayed alert_id cancels the transaction and is ignored.
The queue lives in one partition: fine at alert volumes (a few per second at most, Slack allows ~1/s).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cali.core.alerts import Alert, AlertKind
from cali.core.clock import SystemClock
from cali.core.ports import Clock, DeliveryReceipt, Health
from cali.state import StateBackendError, aws_error, dynamodb_table_health
from cali.state.outbox_mapping import DEAD, DELIVERED, PENDING, alert_from_json, alert_to_json, receipt_from

log = logging.getLogger(__name__)

DEFAULT_TABLE = "cali-outbox"
COUNTER_PK = "meta#counter"
QUEUE_PK = "queue"
DEAD_PK = "dead"
# TransactWriteItems holds 100 actions: 50 alerts of two items each.
_ALERTS_PER_TRANSACTION = 50

_CREATE = (
    "aws dynamodb create-table --table-name {table} --attribute-definitions "
    "AttributeName=pk,AttributeType=S AttributeName=seq,AttributeType=N --key-schema "
    "AttributeName=pk,KeyType=HASH AttributeName=seq,KeyType=RANGE --billing-mode PAY_PER_REQUEST"
)
_HINTS = {
    "ResourceNotFoundException": "the table does not exist: create it with " + _CREATE,
    "AccessDeniedException": (
        "grant dynamodb:GetItem/Query/UpdateItem/TransactWriteItems/DescribeTable on {table}"
    ),
    "UnrecognizedClientException": "check the AWS credentials used by the pipeline",
    "ProvisionedThroughputExceededException": "the table is throttled: raise its capacity or use on-demand",
    "ValidationException": "the table's key schema must be HASH pk (S), RANGE seq (N): " + _CREATE,
}
# STATUS is a DynamoDB reserved word; every attribute goes through a placeholder for uniformity.
_NAMES = {
    "#pk": "pk",
    "#st": "status",
    "#rc": "receipt_channel",
    "#rt": "receipt_ts",
    "#done": "done_at",
    "#why": "reason",
    "#aid": "alert_id",
    "#q": "qseq",
}


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def create_outbox_table(client: Any, table: str = DEFAULT_TABLE) -> None:
    """CreateTable for the local stack and tests (production tables come from infrastructure code)."""
    client.create_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "seq", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "seq", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


class DynamoDBOutbox:
    """Outbox port (+ mark_failed, thread_parent_id). `client` is a boto3 DynamoDB client (low-level API)."""

    def __init__(self, client: Any, table: str = DEFAULT_TABLE, clock: Clock | None = None) -> None:
        self._ddb = client
        self.table = table
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"DynamoDBOutbox(table={self.table!r})"

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self._ddb, _SNAKE[operation])(TableName=self.table, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise aws_error(operation, self.table, exc, _HINTS) from exc

    def _transact(self, items: list[dict[str, Any]]) -> bool:
        """TransactWriteItems; False if a condition failed (the write was a replay), raises otherwise."""
        for item in items:
            next(iter(item.values()))["TableName"] = self.table
        try:
            self._ddb.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _code(exc) == "TransactionCanceledException" and "ConditionalCheckFailed" in str(
                exc.response.get("CancellationReasons") or exc
            ):
                return False
            raise aws_error("TransactWriteItems", self.table, exc, _HINTS) from exc
        except BotoCoreError as exc:
            raise aws_error("TransactWriteItems", self.table, exc, _HINTS) from exc
        return True

    @staticmethod
    def _id_key(alert_id: str) -> dict[str, Any]:
        return {"pk": _s(f"alert#{alert_id}"), "seq": _n(0)}

    def enqueue(self, alerts: Sequence[Alert]) -> None:
        """Reserves len(alerts) queue positions (UpdateItem ADD), then TransactWriteItems of up to 50 alerts.

        A chunk holding a replayed alert id is cancelled whole; it is then written one alert at a time, so
        the replay is ignored and its neighbours still land (a storm of new incidents costs one call per
        50 alerts, a replay costs what it did before)."""
        if not alerts:
            return
        resp = self._call(
            "UpdateItem",
            Key={"pk": _s(COUNTER_PK), "seq": _n(0)},
            UpdateExpression="ADD n :k",
            ExpressionAttributeValues={":k": _n(len(alerts))},
            ReturnValues="UPDATED_NEW",
        )
        top = int(resp["Attributes"]["n"]["N"])
        now = self._clock.now().isoformat()
        pairs = [self._items(alert, position, now)
                 for position, alert in enumerate(alerts, start=top - len(alerts) + 1)]
        for k in range(0, len(pairs), _ALERTS_PER_TRANSACTION):
            chunk = pairs[k:k + _ALERTS_PER_TRANSACTION]
            if len(chunk) > 1 and self._transact([item for pair in chunk for item in pair]):
                continue
            for pair, alert in zip(chunk, alerts[k:k + _ALERTS_PER_TRANSACTION], strict=True):
                if not self._transact(list(pair)):
                    log.debug("outbox: alert %s already enqueued, ignored", alert.alert_id)

    def _items(self, alert: Alert, position: int, now: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The id item and the queue item of one alert, each conditional on not existing yet."""
        body = alert_to_json(alert)
        id_item = {
            **self._id_key(alert.alert_id),
            "alert_id": _s(alert.alert_id),
            "qseq": _n(position),
            "status": _s(PENDING),
            "incident_key": _s(alert.incident_key),
            "kind": _s(alert.kind.value),
            "alert": _s(body),
            "enqueued_at": _s(now),
        }
        queue_item = {"pk": _s(QUEUE_PK), "seq": _n(position), "alert_id": _s(alert.alert_id), "alert": _s(body)}
        return tuple({"Put": {"Item": item, "ConditionExpression": "attribute_not_exists(#pk)",  # type: ignore[return-value]
                              "ExpressionAttributeNames": {"#pk": "pk"}}} for item in (id_item, queue_item))

    def pending(self, limit: int) -> list[Alert]:
        """Query pk="queue" in seq order (strongly consistent)."""
        alerts: list[Alert] = []
        start: dict[str, Any] | None = None
        while len(alerts) < limit:
            kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            resp = self._call(
                "Query",
                KeyConditionExpression="#pk = :q",
                ExpressionAttributeNames={"#pk": "pk"},
                ExpressionAttributeValues={":q": _s(QUEUE_PK)},
                ScanIndexForward=True,
                ConsistentRead=True,
                Limit=limit - len(alerts),
                **kwargs,
            )
            alerts.extend(alert_from_json(item["alert"]["S"]) for item in resp.get("Items", []))
            start = resp.get("LastEvaluatedKey")
            if not start:
                break
        return alerts

    def _id_item(self, alert_id: str) -> dict[str, Any] | None:
        resp = self._call("GetItem", Key=self._id_key(alert_id), ConsistentRead=True)
        return resp.get("Item")

    def mark_delivered(self, alert_id: str, receipt: DeliveryReceipt) -> None:
        """One transaction: id item -> delivered with the receipt, queue item deleted, thread pointer set."""
        item = self._require_pending(alert_id)
        if item is None:
            return
        qseq = int(item["qseq"]["N"])
        values = {
            ":d": _s(DELIVERED),
            ":p": _s(PENDING),
            ":now": _s(self._clock.now().isoformat()),
            ":rc": _s(receipt.channel or ""),
            ":rt": _s(receipt.ts or ""),
        }
        ops = [
            self._finish_op(alert_id, "SET #st = :d, #done = :now, #rc = :rc, #rt = :rt", values),
            {"Delete": {"Key": {"pk": _s(QUEUE_PK), "seq": _n(qseq)}}},
        ]
        if item["kind"]["S"] == AlertKind.FIRST.value:
            # Delivery is in order, so the last FIRST delivered for an incident is its current thread.
            ops.append(
                {
                    "Put": {
                        "Item": {
                            "pk": _s(f"incident#{item['incident_key']['S']}"),
                            "seq": _n(0),
                            "alert_id": _s(alert_id),
                            "qseq": _n(qseq),
                        }
                    }
                }
            )
        self._transact(ops)

    def mark_failed(self, alert_id: str, reason: str) -> None:
        """One transaction: id item -> dead with the reason, queue item deleted, copy under pk "dead"."""
        item = self._require_pending(alert_id)
        if item is None:
            return
        qseq = int(item["qseq"]["N"])
        now = self._clock.now().isoformat()
        values = {":d": _s(DEAD), ":p": _s(PENDING), ":now": _s(now), ":why": _s(reason[:4000])}
        self._transact(
            [
                self._finish_op(alert_id, "SET #st = :d, #done = :now, #why = :why", values),
                {"Delete": {"Key": {"pk": _s(QUEUE_PK), "seq": _n(qseq)}}},
                {
                    "Put": {
                        "Item": {
                            "pk": _s(DEAD_PK),
                            "seq": _n(qseq),
                            "alert_id": _s(alert_id),
                            "alert": item["alert"],
                            "reason": _s(reason[:4000]),
                            "failed_at": _s(now),
                        }
                    }
                },
            ]
        )

    def _require_pending(self, alert_id: str) -> dict[str, Any] | None:
        item = self._id_item(alert_id)
        if item is None:
            raise StateBackendError(
                f"DynamoDB outbox {self.table!r}: alert {alert_id!r} was never enqueued; "
                "mark_delivered/mark_failed take ids returned by pending()"
            )
        return item if item["status"]["S"] == PENDING else None  # already marked: nothing to do

    def _finish_op(self, alert_id: str, update: str, values: dict[str, Any]) -> dict[str, Any]:
        used = {k: v for k, v in _NAMES.items() if k in update or k == "#st"}
        return {
            "Update": {
                "Key": self._id_key(alert_id),
                "UpdateExpression": update,
                "ConditionExpression": "#st = :p",
                "ExpressionAttributeNames": used,
                "ExpressionAttributeValues": values,
            }
        }

    def receipt(self, alert_id: str) -> DeliveryReceipt | None:
        item = self._id_item(alert_id)
        if not item or item["status"]["S"] != DELIVERED:
            return None
        return receipt_from(item.get("receipt_channel", {}).get("S"), item.get("receipt_ts", {}).get("S"))

    def thread_parent_id(self, incident_key: str) -> str | None:
        resp = self._call(
            "GetItem", Key={"pk": _s(f"incident#{incident_key}"), "seq": _n(0)}, ConsistentRead=True
        )
        item = resp.get("Item")
        return item["alert_id"]["S"] if item else None

    def dead_letters(self, limit: int = 100) -> list[tuple[Alert, str]]:
        resp = self._call(
            "Query",
            KeyConditionExpression="#pk = :d",
            ExpressionAttributeNames={"#pk": "pk"},
            ExpressionAttributeValues={":d": _s(DEAD_PK)},
            Limit=limit,
            ConsistentRead=True,
        )
        return [(alert_from_json(i["alert"]["S"]), i["reason"]["S"]) for i in resp.get("Items", [])]

    def healthcheck(self) -> Health:
        """DescribeTable: the table exists, is ACTIVE, and has the HASH pk / RANGE seq key schema."""
        return dynamodb_table_health(f"dynamodb-outbox:{self.table}", lambda: self._call("DescribeTable")["Table"],
                                     self.table, {"pk": "HASH", "seq": "RANGE"}, _CREATE)


_SNAKE = {
    "UpdateItem": "update_item",
    "GetItem": "get_item",
    "Query": "query",
    "DescribeTable": "describe_table",
}


def _code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None
