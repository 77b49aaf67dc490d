"""StateStore on one SQLite file (WAL): JSON documents by (scope, name) with an optimistic version."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from cali.core.clock import SystemClock
from cali.core.ports import Clock, Health
from cali.state import (
    SINGLE,
    SqliteFile,
    StateBackendError,
    VersionConflict,
    check_item_size,
    encode_state,
    sqlite_health,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    pk         TEXT NOT NULL,
    sk         TEXT NOT NULL,
    value      TEXT NOT NULL,
    version    INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
);
"""
_UPSERT = ("INSERT INTO items (pk, sk, value, version, updated_at) VALUES (?, ?, ?, ?, ?) "
           "ON CONFLICT(pk, sk) DO UPDATE SET value = excluded.value, version = excluded.version, "
           "updated_at = excluded.updated_at")


class SqliteState:
    """State documents in the `items` table of `path`; one connection per instance and process.

    `save(key, value)` always wins (last writer); `save(key, value, expected_version=n)` only writes if
    the stored version is n (0 = the key must not exist yet) and raises VersionConflict otherwise.
    `commit(scope, puts, deletes)` writes a scope's items in one transaction.
    """

    def __init__(self, path: str | Path, clock: Clock | None = None, busy_timeout_s: float = 30.0) -> None:
        self._db = SqliteFile(path, SCHEMA, busy_timeout_s)
        self._clock = clock or SystemClock()

    @property
    def path(self) -> Path:
        return self._db.path

    def __repr__(self) -> str:
        return f"SqliteState(path={str(self.path)!r})"

    def _fail(self, what: str, exc: sqlite3.Error) -> StateBackendError:
        return StateBackendError(f"SQLite {what} in {self.path} failed: {type(exc).__name__}: {exc}",
                                 retryable="locked" in str(exc) or "busy" in str(exc))

    def load_versioned(self, key: str) -> tuple[dict[str, Any], int] | None:
        try:
            row = self._db.fetchone("SELECT value, version FROM items WHERE pk = ? AND sk = ?", (key, SINGLE))
        except sqlite3.Error as exc:
            raise self._fail(f"SELECT state {key!r}", exc) from exc
        return (orjson.loads(row[0]), int(row[1])) if row else None

    def load(self, key: str) -> dict[str, Any] | None:
        found = self.load_versioned(key)
        return found[0] if found else None

    def save(self, key: str, value: dict[str, Any], expected_version: int | None = None) -> int:
        """Writes the document and returns its new version (1 for a new key)."""
        body = encode_state(key, value).decode("utf-8")
        now = self._clock.now().isoformat()
        try:
            with self._db.transaction() as conn:
                row = conn.execute("SELECT version FROM items WHERE pk = ? AND sk = ?", (key, SINGLE)).fetchone()
                current = int(row[0]) if row else None
                if expected_version is not None and (current or 0) != expected_version:
                    raise VersionConflict(key, expected_version, current)
                new = (current or 0) + 1
                conn.execute(_UPSERT, (key, SINGLE, body, new, now))
                return new
        except sqlite3.Error as exc:
            raise self._fail(f"save state {key!r}", exc) from exc

    def load_scope(self, scope: str) -> dict[str, dict[str, Any]]:
        """Every item of a scope, by name."""
        try:
            rows = self._db.fetchall("SELECT sk, value FROM items WHERE pk = ? AND sk != ?", (scope, SINGLE))
        except sqlite3.Error as exc:
            raise self._fail(f"SELECT scope {scope!r}", exc) from exc
        return {sk: orjson.loads(value) for sk, value in rows}

    def commit(self, scope: str, puts: Mapping[str, dict[str, Any]], deletes: Iterable[str] = ()) -> None:
        """Writes `puts` and removes `deletes` in one transaction: all of it lands, or none."""
        bodies = {name: check_item_size(scope, name, encode_state(f"{scope}/{name}", v)).decode("utf-8")
                  for name, v in puts.items()}
        gone = [name for name in deletes if name not in bodies]
        if not bodies and not gone:
            return
        now = self._clock.now().isoformat()
        try:
            with self._db.transaction() as conn:
                conn.executemany(_UPSERT, [(scope, name, body, 1, now) for name, body in bodies.items()])
                conn.executemany("DELETE FROM items WHERE pk = ? AND sk = ?", [(scope, name) for name in gone])
        except sqlite3.Error as exc:
            raise self._fail(f"commit scope {scope!r}", exc) from exc

    def healthcheck(self) -> Health:
        """Opens the file, ensures the table, and checks SQLite can read it."""
        return sqlite_health(f"sqlite-state:{self.path}", self.path,
                             lambda: "{} state item(s)".format(self._db.fetchone("SELECT COUNT(*) FROM items")[0]))

    def close(self) -> None:
        self._db.close()


__all__ = ["SCHEMA", "SqliteState"]
