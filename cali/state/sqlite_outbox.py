"""Outbox on one SQLite file (WAL): alerts wait here, in enqueue order, until Slack has them."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from cali.core.alerts import Alert, AlertKind
from cali.core.clock import SystemClock
from cali.core.ports import Clock, DeliveryReceipt, Health
from cali.state import SqliteFile, StateBackendError, sqlite_health
from cali.state.outbox_mapping import DEAD, DELIVERED, PENDING, alert_from_json, alert_to_json, receipt_from

# seq (AUTOINCREMENT) is the delivery order: it never reuses a value, so order is enqueue order even
# after rows are deleted. alert_id UNIQUE + INSERT OR IGNORE makes enqueue idempotent.
SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id        TEXT NOT NULL UNIQUE,
    incident_key    TEXT NOT NULL,
    kind            TEXT NOT NULL,
    alert_json      TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    enqueued_at     TEXT NOT NULL,
    done_at         TEXT,
    receipt_channel TEXT,
    receipt_ts      TEXT,
    reason          TEXT
);
CREATE INDEX IF NOT EXISTS outbox_status_seq ON outbox (status, seq);
CREATE INDEX IF NOT EXISTS outbox_incident ON outbox (incident_key, kind, status, seq);
"""


class SqliteOutbox:
    """Outbox port (+ mark_failed, thread_parent_id) on the `outbox` table of `path`."""

    def __init__(self, path: str | Path, clock: Clock | None = None, busy_timeout_s: float = 30.0) -> None:
        self._db = SqliteFile(path, SCHEMA, busy_timeout_s)
        self._clock = clock or SystemClock()

    @property
    def path(self) -> Path:
        return self._db.path

    def __repr__(self) -> str:
        return f"SqliteOutbox(path={str(self.path)!r})"

    def _fail(self, what: str, exc: Exception) -> StateBackendError:
        return StateBackendError(f"SQLite outbox {what} in {self.path} failed: {type(exc).__name__}: {exc}")

    def enqueue(self, alerts: Sequence[Alert]) -> None:
        """INSERT OR IGNORE, one transaction for the batch: all stored, in order, or none."""
        now = self._clock.now().isoformat()
        rows = [(a.alert_id, a.incident_key, a.kind.value, alert_to_json(a), PENDING, now) for a in alerts]
        try:
            with self._db.transaction() as conn:
                conn.executemany(
                    "INSERT OR IGNORE INTO outbox "
                    "(alert_id, incident_key, kind, alert_json, status, enqueued_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.Error as exc:
            raise self._fail(f"enqueue of {len(rows)} alert(s)", exc) from exc

    def pending(self, limit: int) -> list[Alert]:
        try:
            rows = self._db.fetchall(
                "SELECT alert_json FROM outbox WHERE status = ? ORDER BY seq LIMIT ?", (PENDING, limit)
            )
        except sqlite3.Error as exc:
            raise self._fail("SELECT pending", exc) from exc
        return [alert_from_json(r[0]) for r in rows]

    def _finish(self, alert_id: str, status: str, channel: str | None, ts: str | None, reason: str | None) -> None:
        now = self._clock.now().isoformat()
        try:
            with self._db.transaction() as conn:
                # Only a pending row moves: a second mark of the same alert changes nothing.
                conn.execute(
                    "UPDATE outbox SET status = ?, done_at = ?, receipt_channel = ?, receipt_ts = ?, "
                    "reason = ? "
                    "WHERE alert_id = ? AND status = ?",
                    (status, now, channel, ts, reason, alert_id, PENDING),
                )
        except sqlite3.Error as exc:
            raise self._fail(f"mark {status} of {alert_id!r}", exc) from exc

    def mark_delivered(self, alert_id: str, receipt: DeliveryReceipt) -> None:
        self._finish(alert_id, DELIVERED, receipt.channel, receipt.ts, None)

    def mark_failed(self, alert_id: str, reason: str) -> None:
        self._finish(alert_id, DEAD, None, None, reason)

    def receipt(self, alert_id: str) -> DeliveryReceipt | None:
        try:
            row = self._db.fetchone(
                "SELECT receipt_channel, receipt_ts FROM outbox WHERE alert_id = ? AND status = ?",
                (alert_id, DELIVERED),
            )
        except sqlite3.Error as exc:
            raise self._fail(f"SELECT receipt of {alert_id!r}", exc) from exc
        return receipt_from(row[0], row[1]) if row else None

    def thread_parent_id(self, incident_key: str) -> str | None:
        try:
            row = self._db.fetchone(
                "SELECT alert_id FROM outbox WHERE incident_key = ? AND kind = ? AND status = ? "
                "ORDER BY seq DESC LIMIT 1",
                (incident_key, AlertKind.FIRST.value, DELIVERED),
            )
        except sqlite3.Error as exc:
            raise self._fail(f"SELECT thread parent of {incident_key!r}", exc) from exc
        return row[0] if row else None

    def dead_letters(self, limit: int = 100) -> list[tuple[Alert, str]]:
        """Permanently rejected alerts with the reason, newest last (for the CLI and the dashboard)."""
        rows = self._db.fetchall(
            "SELECT alert_json, reason FROM outbox WHERE status = ? ORDER BY seq LIMIT ?", (DEAD, limit)
        )
        return [(alert_from_json(r[0]), r[1] or "") for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self._db.fetchall("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        return {PENDING: 0, DELIVERED: 0, DEAD: 0} | {r[0]: int(r[1]) for r in rows}

    def healthcheck(self) -> Health:
        """Opens the file, ensures the table, counts pending alerts."""

        def probe() -> str:
            counts = self.counts()
            return f"{counts[PENDING]} pending, {counts[DELIVERED]} delivered, {counts[DEAD]} dead"

        return sqlite_health(f"sqlite-outbox:{self.path}", self.path, probe)

    def close(self) -> None:
        self._db.close()
