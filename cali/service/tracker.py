"""The tracker's durability order: alerts into the outbox, then the changed state items, then the ack."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from cali.core.incidents import Candidate, IncidentBook
from cali.core.ports import Outbox, StateStore, Unavailable


class TrackerService:
    def __init__(self, book: IncidentBook, state: StateStore, outbox: Outbox, scope: str,
                 on_alerts: Callable[[], None] = lambda: None) -> None:
        self.book, self.state, self.outbox, self.scope = book, state, outbox, scope
        self.on_alerts = on_alerts
        self._lock = threading.Lock()
        self._stale = True  # nothing loaded yet
        self.replays = 0

    def restore(self) -> int:
        """Loads the scope; returns how many items it held."""
        with self._lock:
            items = self.state.load_scope(self.scope)
            self.book.load(items)
            self._stale = False
            return len(items)

    def ingest(self, candidates: Sequence[Candidate]) -> list[str]:
        """Counts the candidates and commits; returns each one's incident key, for the archive."""
        with self._lock:
            self._fresh()
            try:
                result = self.book.ingest(candidates)
                self._commit(result.alerts)
            except Exception:
                self._rollback()
                raise  # no ack: the reader sends the same candidates again, and they count once
            self.replays += result.replays
        return result.keys

    def tick(self) -> int:
        with self._lock:
            self._fresh()
            try:
                alerts = self.book.tick()
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
        puts, deletes = self.book.changes()
        self.state.commit(self.scope, puts, deletes)
        self.book.committed(puts, deletes)
        if alerts:
            self.on_alerts()

    def _rollback(self) -> None:
        """Back to the last committed state, so a retried batch opens the same windows again."""
        try:
            self.book.load(self.state.load_scope(self.scope))
            self._stale = False
        except Exception:
            self._stale = True  # the next call reloads before it counts anything

    def _fresh(self) -> None:
        if self._stale:
            try:
                self.book.load(self.state.load_scope(self.scope))
            except Exception as exc:
                raise Unavailable(f"tracker state {self.scope} cannot be read: {exc}") from exc
            self._stale = False

    def stats(self) -> dict[str, Any]:
        # Without the lock: a long batch (an alert storm) must not make the tracker look dead to liveness
        # checks; the counters may be one batch behind.
        return {"alerts_sent": self.book.sent, "alerts_suppressed": self.book.suppressed,
                "open_incidents": len(self.book.throttler.windows), "replays_dropped": self.replays,
                "services": len(self.book.groups.miners)}
