"""Ports: the small interfaces between the pure core and the adapters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cali.core.alerts import Alert


class Clock(Protocol):
    def now(self) -> datetime: ...
    def monotonic(self) -> float: ...


@dataclass(frozen=True)
class Health:
    name: str
    ok: bool
    detail: str  # what is wrong and how to fix it, or what was reached


class HealthChecked(Protocol):
    def healthcheck(self) -> Health: ...


@dataclass(frozen=True)
class DeliveryReceipt:
    channel: str | None = None
    ts: str | None = None  # Slack message ts: the thread to reply in (bot mode)


class Notifier(HealthChecked, Protocol):
    def send(self, alert: Alert) -> DeliveryReceipt:
        """Delivers one alert or raises after the adapter's own retries."""
        ...


class ArchiveSink(HealthChecked, Protocol):
    def put_batch(self, key: str, body: bytes) -> None:
        """Writes one object durably (returns only once it is stored)."""
        ...


class CheckpointStore(HealthChecked, Protocol):
    def get_checkpoint(self, stream: str, shard_id: str) -> str | None: ...
    def put_checkpoint(self, stream: str, shard_id: str, sequence: str, owner: str) -> None:
        """Advances the checkpoint; never moves it backwards (conditional write)."""
        ...
    def mark_shard_end(self, stream: str, shard_id: str) -> None: ...
    def is_shard_ended(self, stream: str, shard_id: str) -> bool: ...


class StateStore(HealthChecked, Protocol):
    """Opaque JSON blobs by key: throttle state, miner state."""

    def load(self, key: str) -> dict[str, Any] | None: ...
    def save(self, key: str, value: dict[str, Any]) -> None: ...


class Outbox(HealthChecked, Protocol):
    def enqueue(self, alerts: Sequence[Alert]) -> None:
        """Stores alerts durably, in order; an alert_id already present is ignored."""
        ...
    def pending(self, limit: int) -> list[Alert]: ...
    def mark_delivered(self, alert_id: str, receipt: DeliveryReceipt) -> None: ...
    def receipt(self, alert_id: str) -> DeliveryReceipt | None: ...
