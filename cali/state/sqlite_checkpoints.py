"""The lease table on one SQLite file (WAL): the DynamoDB lease-table semantics for a single machine."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from cali.core.clock import SystemClock
from cali.core.ports import Clock, Health, Lease, LeaseLost
from cali.state import SqliteFile, StateBackendError, pad_sequence, shard_key, sqlite_health, unpad_sequence

log = logging.getLogger(__name__)

# seq is the zero-padded sequence: TEXT under the default BINARY collation compares with memcmp,
# so "seq < ?" is numeric order, as in the DynamoDB table.
SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    shard_key  TEXT PRIMARY KEY,
    owner      TEXT,
    counter    INTEGER NOT NULL DEFAULT 0,
    seq        TEXT,
    sequence   TEXT,
    updated_at TEXT,
    shard_end  INTEGER NOT NULL DEFAULT 0,
    ended_at   TEXT
);
"""
_ROW = "SELECT owner, counter, seq, shard_end FROM leases WHERE shard_key = ?"


class SqliteCheckpoints:
    """Per-shard leases and checkpoints in the `leases` table of `path`; every change inside BEGIN IMMEDIATE."""

    def __init__(self, path: str | Path, clock: Clock | None = None, busy_timeout_s: float = 30.0) -> None:
        self._db = SqliteFile(path, SCHEMA, busy_timeout_s)
        self._clock = clock or SystemClock()

    @property
    def path(self) -> Path:
        return self._db.path

    def __repr__(self) -> str:
        return f"SqliteCheckpoints(path={str(self.path)!r})"

    def _row(self, key: str) -> tuple | None:
        try:
            return self._db.fetchone(_ROW, (key,))
        except sqlite3.Error as exc:
            raise _error(self.path, "SELECT lease", exc) from exc

    def get_checkpoint(self, stream: str, shard_id: str) -> str | None:
        row = self._row(shard_key(stream, shard_id))
        return unpad_sequence(row[2]) if row and row[2] is not None else None

    def get_lease(self, stream: str, shard_id: str) -> Lease:
        key = shard_key(stream, shard_id)
        return _lease(key, self._row(key))

    def _swap(self, key: str, what: str, check: str, params: tuple, change: str, change_params: tuple) -> bool:
        """Reads the row, and applies `change` if `check(row)` holds, in one write transaction."""
        try:
            with self._db.transaction() as conn:
                conn.execute("INSERT OR IGNORE INTO leases (shard_key, counter) VALUES (?, 0)", (key,))
                hit = conn.execute(f"SELECT 1 FROM leases WHERE shard_key = ? AND {check}", (key, *params)).fetchone()
                if hit is None:
                    return False
                conn.execute(f"UPDATE leases SET {change}, updated_at = ? WHERE shard_key = ?",
                             (*change_params, self._clock.now().isoformat(), key))
                return True
        except sqlite3.Error as exc:
            raise _error(self.path, what, exc) from exc

    def take_lease(self, stream: str, shard_id: str, owner: str, expected_counter: int) -> Lease | None:
        key = shard_key(stream, shard_id)
        if not self._swap(key, "take lease", "counter = ?", (expected_counter,),
                          "owner = ?, counter = ?", (owner, expected_counter + 1)):
            return None
        return self.get_lease(stream, shard_id)

    def renew_lease(self, stream: str, shard_id: str, owner: str, counter: int) -> int | None:
        ok = self._swap(shard_key(stream, shard_id), "renew lease", "owner = ? AND counter = ?", (owner, counter),
                        "counter = ?", (counter + 1,))
        return counter + 1 if ok else None

    def release_lease(self, stream: str, shard_id: str, owner: str, counter: int) -> bool:
        return self._swap(shard_key(stream, shard_id), "release lease", "owner = ? AND counter = ?",
                          (owner, counter), "owner = NULL, counter = ?", (counter + 1,))

    def put_checkpoint(self, stream: str, shard_id: str, sequence: str, owner: str) -> bool:
        """Advances the checkpoint if `owner` holds the lease; False if already there; LeaseLost otherwise."""
        padded = pad_sequence(sequence)
        key = shard_key(stream, shard_id)
        if self._swap(key, "checkpoint", "owner = ? AND (seq IS NULL OR seq < ?)", (owner, padded),
                      "seq = ?, sequence = ?", (padded, sequence)):
            return True
        lease = self.get_lease(stream, shard_id)
        if lease.owner != owner:
            raise LeaseLost(f"checkpoint {key} at {sequence} refused: the lease is held by "
                            f"{lease.owner or 'nobody'}, not {owner}")
        if lease.checkpoint != sequence:
            log.warning("stale checkpoint ignored: %s is at %s; %s tried to write %s", key, lease.checkpoint,
                        owner, sequence)
        return False

    def mark_shard_end(self, stream: str, shard_id: str) -> None:
        now = self._clock.now().isoformat()
        try:
            with self._db.transaction() as conn:
                conn.execute(
                    "INSERT INTO leases (shard_key, updated_at, shard_end, ended_at) VALUES (?, ?, 1, ?) "
                    "ON CONFLICT(shard_key) DO UPDATE SET shard_end = 1, updated_at = excluded.updated_at, "
                    "ended_at = COALESCE(leases.ended_at, excluded.ended_at)",
                    (shard_key(stream, shard_id), now, now))
        except sqlite3.Error as exc:
            raise _error(self.path, "mark shard end", exc) from exc

    def is_shard_ended(self, stream: str, shard_id: str) -> bool:
        row = self._row(shard_key(stream, shard_id))
        return bool(row and row[3])

    def healthcheck(self) -> Health:
        """Opens the file, ensures the table, and checks SQLite can read it."""
        return sqlite_health(f"sqlite-checkpoints:{self.path}", self.path, lambda: "{} lease(s)".format(
            self._db.fetchone("SELECT COUNT(*) FROM leases")[0]))

    def close(self) -> None:
        self._db.close()


def _lease(key: str, row: tuple | None) -> Lease:
    if row is None:
        return Lease(key=key, owner=None, counter=0)
    return Lease(key=key, owner=row[0] or None, counter=int(row[1]),
                 checkpoint=unpad_sequence(row[2]) if row[2] is not None else None, ended=bool(row[3]))


def _error(path: Path, what: str, exc: sqlite3.Error) -> StateBackendError:
    return StateBackendError(f"SQLite {what} in {path} failed: {type(exc).__name__}: {exc}; if the database "
                             "is locked, another process held the write lock past the busy timeout")


__all__ = ["SCHEMA", "SqliteCheckpoints"]
