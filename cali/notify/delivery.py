"""Drains the outbox to the notifier in order: stop on a retryable failure, dead-letter a permanent one.

Delivery guarantee: once, in order, as long as the process survives; at-least-once on a crash. The alert is
marked delivered right after the notifier returns, so the only window for a duplicate is a crash (or a lost
outbox write) between Slack accepting the message and mark_delivered: the next drain sends it again. A
timeout retried by the notifier can duplicate for the same reason (Slack may have posted before the
connection dropped). Nothing is lost: an alert leaves `pending` only through mark_delivered or mark_failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from cali.core.alerts import Alert, AlertKind
from cali.core.ports import Clock, DeliveryReceipt, Notifier, Outbox
from cali.notify.errors import PermanentDeliveryError

log = logging.getLogger(__name__)


class DeliveryOutbox(Outbox, Protocol):
    """The Outbox port plus what delivery needs: a dead-letter mark and a thread parent look-up.

    Proposed for cali.core.ports.Outbox; both outbox adapters implement it.
    """

    def mark_failed(self, alert_id: str, reason: str) -> None:
        """Takes the alert out of `pending` for good, keeping it with the reason (dead-letter)."""
        ...

    def thread_parent_id(self, incident_key: str) -> str | None:
        """alert_id of the latest delivered FIRST alert of this incident: its receipt holds the thread ts."""
        ...


class ThreadingNotifier(Notifier, Protocol):
    def send(self, alert: Alert, thread_ts: str | None = None) -> DeliveryReceipt: ...


@dataclass
class DeliveryStats:
    delivered: int = 0
    dead: int = 0
    retryable_failures: int = 0
    last_error: str | None = None
    last_failure_at: datetime | None = None
    last_success_at: datetime | None = None


class DeliveryLoop:
    """One drain at a time (not thread-safe by design: a single owner keeps the order)."""

    def __init__(
        self,
        outbox: DeliveryOutbox,
        notifier: Notifier,
        clock: Clock,
        *,
        batch_size: int = 50,
        pause_after_failure: float = 5.0,
        max_pause: float = 300.0,
        on_delivered: Callable[[Alert], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.notifier = notifier
        self.clock = clock
        self.batch_size = batch_size
        self.pause_after_failure = pause_after_failure  # seconds before the next drain tries again
        self.max_pause = max_pause
        self.on_delivered = on_delivered  # e.g. start the analysis of a FIRST alert once it is out
        self.stats = DeliveryStats()
        self._not_before = float("-inf")

    def ready(self) -> bool:
        """False while backing off after a retryable failure (Retry-After, or pause_after_failure)."""
        return self.clock.monotonic() >= self._not_before

    def drain(self, max_items: int = 100) -> int:
        """Delivers up to max_items pending alerts in order; returns how many were delivered now."""
        if not self.ready():
            return 0
        delivered = handled = 0
        while handled < max_items:
            batch = self.outbox.pending(min(self.batch_size, max_items - handled))
            if not batch:
                break
            for alert in batch:
                outcome = self._deliver(alert)
                if outcome is None:
                    return delivered  # retryable: keep this alert and everything after it for later
                handled += 1
                delivered += outcome
        return delivered

    def _deliver(self, alert: Alert) -> int | None:
        """1 delivered, 0 dead-lettered, None: stop the drain."""
        try:
            thread_ts = self._thread_ts(alert)
            receipt = (
                self.notifier.send(alert, thread_ts=thread_ts)  # type: ignore[call-arg]
                if thread_ts
                else self.notifier.send(alert)
            )
        except PermanentDeliveryError as exc:
            reason = str(exc)
            self.outbox.mark_failed(alert.alert_id, reason)
            self.stats.dead += 1
            self.stats.last_error = reason
            self.stats.last_failure_at = self.clock.now()
            log.error("alert %s dead-lettered: %s", alert.alert_id, reason)
            return 0
        except Exception as exc:  # retryable, or unknown: never drop, try again later
            self.stats.retryable_failures += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            self.stats.last_failure_at = self.clock.now()
            retry_after = getattr(exc, "retry_after", None)
            pause = min(self.max_pause, max(self.pause_after_failure, retry_after or 0.0))
            self._not_before = self.clock.monotonic() + pause
            log.warning(
                "delivery of %s stopped, retrying in %.1fs: %s", alert.alert_id, pause, self.stats.last_error
            )
            return None
        self.outbox.mark_delivered(alert.alert_id, receipt)
        self.stats.delivered += 1
        self.stats.last_success_at = self.clock.now()
        if self.on_delivered is not None:
            try:
                self.on_delivered(alert)
            except Exception as exc:  # a follow-up (the analysis) must never hold back delivery
                log.warning("after-delivery hook failed for %s: %s", alert.alert_id, exc)
        return 1

    def _thread_ts(self, alert: Alert) -> str | None:
        if alert.kind is AlertKind.FIRST:
            return None
        parent = alert.parent_alert_id or self.outbox.thread_parent_id(alert.incident_key)
        receipt = self.outbox.receipt(parent) if parent else None
        return receipt.ts if receipt else None
