"""Row <-> Alert mapping shared by the outbox adapters (the Alert's own JSON, so both stores agree)."""

from __future__ import annotations

from cali.core.alerts import Alert
from cali.core.ports import DeliveryReceipt

PENDING = "pending"
DELIVERED = "delivered"
DEAD = "dead"  # permanently rejected: kept with its reason, never retried


def alert_to_json(alert: Alert) -> str:
    return alert.model_dump_json()


def alert_from_json(raw: str | bytes) -> Alert:
    return Alert.model_validate_json(raw)


def receipt_from(channel: str | None, ts: str | None) -> DeliveryReceipt:
    return DeliveryReceipt(channel=channel or None, ts=ts or None)
