"""The tracker's durability order: alerts into the outbox, then state saved, then the ack."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from cali.core.incidents import Candidate, IncidentBook
from cali.core.ports import Outbox, StateStore


class TrackerService:
    def __init__(self, book: IncidentBook, state: StateStore, outbox: Outbox, state_key: str,
                 on_alerts: Callable[[], None] = lambda: None) -> None:
        self.book, self.state, self.outbox, self.state_key = book, state, outbox, state_key
        self.on_alerts = on_alerts
        self._lock = threading.Lock()

    def restore(self) -> bool:
        saved = self.state.load(self.state_key)
        if saved:
            self.book.load_state(saved)
        return bool(saved)

    def ingest(self, candidates: Sequence[Candidate]) -> int:
        with self._lock:
            try:
                alerts = self.book.ingest(candidates)
                self._commit(alerts)
            except Exception:
                self._rollback()
                raise  # no ack: the reader sends the same candidates again
        return len(alerts)

    def tick(self) -> int:
        with self._lock:
            try:
                alerts = self.book.tick()
                if alerts:
                    self.book.sent += len(alerts)
                    self._commit(alerts)
            except Exception:
                self._rollback()
                raise
        return len(alerts)

    def _commit(self, alerts: list[Any]) -> None:
        # A crash between these two writes re-creates the same alert ids on replay, and the
        # outbox ignores ids it already holds: no alert is lost or sent twice.
        if alerts:
            self.outbox.enqueue(alerts)
        self.state.save(self.state_key, self.book.to_state())
        if alerts:
            self.on_alerts()

    def _rollback(self) -> None:
        """Back to the last committed state, so a retried batch opens the same windows again."""
        self.book.load_state(self.state.load(self.state_key) or {})

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"alerts_sent": self.book.sent, "alerts_suppressed": self.book.suppressed,
                    "open_incidents": len(self.book.throttler.windows)}
