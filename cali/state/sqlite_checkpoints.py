"""CheckpointStore on one SQLite file (WAL): the DynamoDB lease-table semantics for a single machine."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from cali.core.clock import SystemClock
from cali.core.ports import Clock, Health
from cali.state import SqliteFile, StateBackendError, pad_sequence, shard_key, sqlite_health, unpad_sequence

log = logging.getLogger(__name__)

# seq is the zero-padded sequence: TEXT under the default BINARY collation compares with memcmp,
# so "seq < ?" is numeric order, as in the DynamoDB table.
SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    shard_key  TEXT PRIMARY KEY,
    seq        TEXT,
    sequence   TEXT,
    owner      TEXT,
    updated_at TEXT,
    shard_end  INTEGER NOT NULL DEFAULT 0,
    ended_at   TEXT
);
"""


class SqliteCheckpoints:
    """Per-shard checkpoints in the `checkpoints` table of `path`; one connection per instance and process."""

    def __init__(self, path: str | Path, clock: Clock | None = None, busy_timeout_s: float = 30.0) -> None:
        self._db = SqliteFile(path, SCHEMA, busy_timeout_s)
        self._clock = clock or SystemClock()

    @property
    def path(self) -> Path:
        return self._db.path

    def __repr__(self) -> str:
        return f"SqliteCheckpoints(path={str(self.path)!r})"

    def _row(self, stream: str, shard_id: str) -> tuple | None:
        try:
            return self._db.fetchone("SELECT seq, sequence, owner, shard_end FROM checkpoints WHERE shard_key = ?",
                                     (shard_key(stream, shard_id),))
        except sqlite3.Error as exc:
            raise _error(self.path, "SELECT checkpoint", exc) from exc

    def get_checkpoint(self, stream: str, shard_id: str) -> str | None:
        row = self._row(stream, shard_id)
        return unpad_sequence(row[0]) if row and row[0] is not None else None

    def put_checkpoint(self, stream: str, shard_id: str, sequence: str, owner: str) -> bool:
        """Advances the checkpoint inside BEGIN IMMEDIATE; returns False (and changes nothing) if the
        stored sequence is the same or higher."""
        padded = pad_sequence(sequence)
        key = shard_key(stream, shard_id)
        try:
            with self._db.transaction() as conn:
                old = conn.execute("SELECT seq, owner FROM checkpoints WHERE shard_key = ?",
                                   (key,)).fetchone()
                if old is not None and old[0] is not None and old[0] >= padded:
                    stored, stored_owner = unpad_sequence(old[0]), old[1]
                else:
                    # The WHERE repeats the rule in SQL, so the row can only move forward.
                    conn.execute(
                        "INSERT INTO checkpoints (shard_key, seq, sequence, owner, updated_at) "
                        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(shard_key) DO UPDATE SET seq = excluded.seq, "
                        "sequence = excluded.sequence, owner = excluded.owner, "
                        "updated_at = excluded.updated_at "
                        "WHERE checkpoints.seq IS NULL OR checkpoints.seq < excluded.seq",
                        (key, padded, sequence, owner, self._clock.now().isoformat()))
                    return True
        except sqlite3.Error as exc:
            raise _error(self.path, "UPSERT checkpoint", exc) from exc
        if stored == unpad_sequence(padded):
            log.debug("checkpoint %s already at %s", key, sequence)
        else:
            log.warning("stale checkpoint ignored: %s is at %s (owner %s); %s tried to write %s",
                        key, stored, stored_owner, owner, sequence)
        return False

    def mark_shard_end(self, stream: str, shard_id: str) -> None:
        now = self._clock.now().isoformat()
        try:
            with self._db.transaction() as conn:
                conn.execute(
                    "INSERT INTO checkpoints (shard_key, updated_at, shard_end, ended_at) "
                    "VALUES (?, ?, 1, ?) "
                    "ON CONFLICT(shard_key) DO UPDATE SET shard_end = 1, updated_at = excluded.updated_at, "
                    "ended_at = COALESCE(checkpoints.ended_at, excluded.ended_at)",
                    (shard_key(stream, shard_id), now, now))
        except sqlite3.Error as exc:
            raise _error(self.path, "mark shard end", exc) from exc

    def is_shard_ended(self, stream: str, shard_id: str) -> bool:
        row = self._row(stream, shard_id)
        return bool(row and row[3])

    def healthcheck(self) -> Health:
        """Opens the file, ensures the table, and checks SQLite can read it."""
        return sqlite_health(f"sqlite-checkpoints:{self.path}", self.path, lambda: "{} shard checkpoint(s)".format(
            self._db.fetchone("SELECT COUNT(*) FROM checkpoints")[0]))

    def close(self) -> None:
        self._db.close()


def _error(path: Path, what: str, exc: sqlite3.Error) -> StateBackendError:
    return StateBackendError(f"SQLite {what} in {path} failed: {type(exc).__name__}: {exc}; if the database "
                             "is locked, another process held the write lock past the busy timeout")


__all__ = ["SCHEMA", "SqliteCheckpoints"]
