"""StateStore on one SQLite file (WAL): JSON blobs by key with an optimistic version."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from cali.core.clock import SystemClock
from cali.core.ports import Clock, Health
from cali.state import SqliteFile, StateBackendError, VersionConflict, encode_state, sqlite_health

SCHEMA = """
CREATE TABLE IF NOT EXISTS state (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
"""


class SqliteState:
    """State blobs in the `state` table of `path`; one connection per instance and process.

    `save(key, value)` always wins (last writer); `save(key, value, expected_version=n)` only writes if
    the stored version is n (0 = the key must not exist yet) and raises VersionConflict otherwise.
    """

    def __init__(self, path: str | Path, clock: Clock | None = None, busy_timeout_s: float = 30.0) -> None:
        self._db = SqliteFile(path, SCHEMA, busy_timeout_s)
        self._clock = clock or SystemClock()

    @property
    def path(self) -> Path:
        return self._db.path

    def __repr__(self) -> str:
        return f"SqliteState(path={str(self.path)!r})"

    def load_versioned(self, key: str) -> tuple[dict[str, Any], int] | None:
        try:
            row = self._db.fetchone("SELECT value, version FROM state WHERE key = ?", (key,))
        except sqlite3.Error as exc:
            raise StateBackendError(f"SQLite SELECT state {key!r} in {self.path} failed: {exc}") from exc
        return (orjson.loads(row[0]), int(row[1])) if row else None

    def load(self, key: str) -> dict[str, Any] | None:
        found = self.load_versioned(key)
        return found[0] if found else None

    def save(self, key: str, value: dict[str, Any], expected_version: int | None = None) -> int:
        """Writes the blob and returns its new version (1 for a new key)."""
        body = encode_state(key, value).decode("utf-8")
        now = self._clock.now().isoformat()
        try:
            with self._db.transaction() as conn:
                row = conn.execute("SELECT version FROM state WHERE key = ?", (key,)).fetchone()
                current = int(row[0]) if row else None
                if expected_version is not None and (current or 0) != expected_version:
                    raise VersionConflict(key, expected_version, current)
                new = (current or 0) + 1
                conn.execute(
                    "INSERT INTO state (key, value, version, updated_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = excluded.version, "
                    "updated_at = excluded.updated_at", (key, body, new, now))
                return new
        except sqlite3.Error as exc:
            raise StateBackendError(f"SQLite save state {key!r} in {self.path} failed: "
                                    f"{type(exc).__name__}: {exc}") from exc

    def healthcheck(self) -> Health:
        """Opens the file, ensures the table, and checks SQLite can read it."""
        return sqlite_health(f"sqlite-state:{self.path}", self.path,
                             lambda: "{} state key(s)".format(self._db.fetchone("SELECT COUNT(*) FROM state")[0]))

    def close(self) -> None:
        self._db.close()


__all__ = ["SCHEMA", "SqliteState"]
