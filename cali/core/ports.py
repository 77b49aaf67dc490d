"""Ports: the small interfaces between the pure core and the adapters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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


@dataclass(frozen=True)
class Lease:
    """One row of the lease table: who processes a shard (or a tracker partition), and how far it got.

    As in KCL, `counter` moves on every take and renewal; a lease whose counter a worker has seen
    unchanged for the lease time is expired, whatever the clocks of the two workers say.
    """

    key: str
    owner: str | None
    counter: int
    checkpoint: str | None = None
    ended: bool = False


class LeaseLost(Exception):
    """Another worker holds the lease now: stop processing at once, write nothing more."""


class CheckpointStore(HealthChecked, Protocol):
    """The lease table: per-shard checkpoint and lease in one row, every write conditional."""

    def get_checkpoint(self, stream: str, shard_id: str) -> str | None: ...
    def put_checkpoint(self, stream: str, shard_id: str, sequence: str, owner: str) -> bool:
        """Advances the checkpoint if `owner` holds the lease; never backwards; LeaseLost otherwise."""
        ...
    def mark_shard_end(self, stream: str, shard_id: str) -> None: ...
    def is_shard_ended(self, stream: str, shard_id: str) -> bool: ...
    def get_lease(self, stream: str, shard_id: str) -> Lease: ...
    def take_lease(self, stream: str, shard_id: str, owner: str, expected_counter: int) -> Lease | None:
        """Sets owner and counter+1 if the counter is still `expected_counter`; None if someone moved first."""
        ...
    def renew_lease(self, stream: str, shard_id: str, owner: str, counter: int) -> int | None:
        """counter+1 if `owner` still holds it at `counter`; returns the new counter, None if lost."""
        ...
    def release_lease(self, stream: str, shard_id: str, owner: str, counter: int) -> bool: ...


class StateStore(HealthChecked, Protocol):
    """JSON documents: single ones by key, and scopes of small items written together.

    A scope (one tracker partition, say) is read whole at start and written as the items that changed,
    in one transaction where the backend has them, so no item grows past the backend's item limit.
    """

    def load(self, key: str) -> dict[str, Any] | None: ...
    def save(self, key: str, value: dict[str, Any]) -> Any: ...
    def load_scope(self, scope: str) -> dict[str, dict[str, Any]]: ...
    def commit(self, scope: str, puts: Mapping[str, dict[str, Any]], deletes: Iterable[str] = ()) -> None: ...


class Outbox(HealthChecked, Protocol):
    def enqueue(self, alerts: Sequence[Alert]) -> None:
        """Stores alerts durably, in order; an alert_id already present is ignored."""
        ...
    def pending(self, limit: int) -> list[Alert]: ...
    def mark_delivered(self, alert_id: str, receipt: DeliveryReceipt) -> None: ...
    def receipt(self, alert_id: str) -> DeliveryReceipt | None: ...


class Unavailable(Exception):
    """A stage cannot take work right now (restarting, not yet holding its lease, its store down): try again."""


class Rejected(Exception):
    """A stage failed on this very input, and would again: retrying the same batch cannot help."""
