"""Durable state adapters (checkpoints, JSON state, outbox) and the ordering rule they share."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

# Kinesis SequenceNumber is `0|([1-9]\d{0,128})` (up to 129 decimal digits; real ones are 56 today).
# Zero-padding to this width makes byte-wise string order equal numeric order, in DynamoDB
# (strings compare by UTF-8 bytes) and in SQLite (TEXT with BINARY collation compares with memcmp).
SEQUENCE_WIDTH = 129
_SEQUENCE = re.compile(r"^[0-9]{1,129}$")


def pad_sequence(sequence: str) -> str:
    """Fixed-width, order-preserving form of a Kinesis sequence number."""
    if not isinstance(sequence, str) or not _SEQUENCE.match(sequence):
        raise ValueError(f"sequence number {sequence!r} is not a decimal string of at most 129 digits")
    return sequence.zfill(SEQUENCE_WIDTH)


def unpad_sequence(padded: str) -> str:
    return padded.lstrip("0") or "0"


def shard_key(stream: str, shard_id: str) -> str:
    if not stream or not shard_id or "/" in shard_id:
        raise ValueError(f"need a stream name and a shard id without '/', got {stream!r}, {shard_id!r}")
    return f"{stream}/{shard_id}"


def encode_state(key: str, value: dict[str, Any]) -> bytes:
    """The JSON of a state blob; refuses what load() could not give back as the same dict."""
    if not isinstance(value, dict):
        raise TypeError(f"state {key!r} must be a dict, got {type(value).__name__}")
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise TypeError(f"state {key!r} is not JSON-serialisable: {exc}") from exc


class VersionConflict(Exception):
    """A state save with expected_version lost the race: reload, merge, save again."""

    def __init__(self, key: str, expected: int, actual: int | None) -> None:
        self.key, self.expected, self.actual = key, expected, actual
        found = "no item" if actual is None else f"version {actual}"
        super().__init__(f"state {key!r}: expected version {expected}, found {found}; "
                         "another writer saved it first: load it again and retry")


class StateTooLarge(Exception):
    """A state document does not fit the backend's item limit: a bug in what is stored, never retried."""


class StateBackendError(Exception):
    """A call to the state backend failed; the message names the call, the table/file, the error and a fix.

    `retryable` says whether trying again can help (throttling, a lost connection, a busy lock) or not
    (a missing table, a validation error): callers set a failing batch aside only in the second case.
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


# The name under which a single document (save/load) is stored in its own scope.
SINGLE = "#"
# DynamoDB's item limit is 400 KB (409,600 bytes) counting attribute names and the other attributes;
# 390 KB for the value leaves room for the keys (<= 2 KB), version and timestamps.
MAX_ITEM_BYTES = 390 * 1024
# DynamoDB error codes after which the same call can succeed.
RETRYABLE_AWS_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable", "TransactionConflictException", "TransactionInProgressException",
    "TransactionCanceledException", "LimitExceededException"})


def check_item_size(scope: str, name: str, body: bytes) -> bytes:
    if len(body) > MAX_ITEM_BYTES:
        raise StateTooLarge(f"state item {scope}/{name} is {len(body):,} bytes of JSON, over the {MAX_ITEM_BYTES:,}"
                            "-byte limit of one item; whatever writes it must bound its size")
    return body


def aws_error(operation: str, table: str, exc: Exception, hints: dict[str, str]) -> StateBackendError:
    """Wraps a botocore ClientError/BotoCoreError (duck-typed, so importing this package needs no botocore)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error", {})
        code, message = str(err.get("Code", "?")), str(err.get("Message", exc))
        hint = hints.get(code, "see the AWS error code in the DynamoDB documentation; retrying may help")
        retryable = code in RETRYABLE_AWS_CODES
    else:
        code, message = type(exc).__name__, str(exc)
        hint = "check that the DynamoDB endpoint is reachable (for the local stack: is moto server running?)"
        retryable = True
    return StateBackendError(f"DynamoDB {operation} on table {table!r} failed: {code}: {message}. "
                             f"{hint.format(table=table)}", retryable=retryable)


@contextmanager
def immediate_transaction(conn: sqlite3.Connection, locked: Any) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE (the write lock up front, so read-then-write cannot interleave), COMMIT, or ROLLBACK
    on any exception. `locked(exc)` gives the exception raised when the lock is not had in busy_timeout."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise locked(exc) from exc
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class SqliteFile:
    """One SQLite file in WAL mode, connected lazily per process: safe to pickle into a Ray actor.

    Each instance owns its connection; several processes (one per ShardReader) share the file and
    serialise writers with BEGIN IMMEDIATE plus a busy timeout.
    """

    def __init__(self, path: str | Path, schema: str, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self._schema = schema
        self._busy_timeout_s = busy_timeout_s
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        # One connection per instance: a threaded actor must not nest BEGIN on it.
        self._lock = threading.RLock()

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_conn": None, "_pid": None, "_lock": None}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def connection(self) -> sqlite3.Connection:
        with self._lock:
            return self._connect()

    def fetchone(self, sql: str, params: tuple[object, ...] = ()) -> tuple | None:
        """One read, serialised with this instance's transactions."""
        with self._lock:
            return self._connect().execute(sql, params).fetchone()

    def fetchall(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
        """A read of many rows, serialised with this instance's transactions."""
        with self._lock:
            return self._connect().execute(sql, params).fetchall()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed checkpoint survives power loss, not only a process crash.
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(self._schema)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: takes the write lock up front, so read-then-write cannot interleave."""
        def locked(exc: Exception) -> StateBackendError:
            return StateBackendError(
                f"SQLite {self.path}: could not take the write lock within {self._busy_timeout_s}s "
                f"({exc}); another process holds it too long, or the file is on a network filesystem "
                "(use a local disk)")

        with self._lock, immediate_transaction(self.connection(), locked) as conn:
            yield conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = self._pid = None


__all__ = ["MAX_ITEM_BYTES", "SEQUENCE_WIDTH", "SINGLE", "SqliteFile", "StateBackendError", "StateTooLarge",
           "VersionConflict", "aws_error", "check_item_size", "encode_state", "pad_sequence", "shard_key",
           "unpad_sequence"]


def dynamodb_table_health(name: str, describe: Any, table: str, keys: dict[str, str], create_cmd: str) -> Any:
    """DescribeTable-based check shared by the DynamoDB adapters: exists, ACTIVE, expected key schema.

    `describe` is a no-argument callable returning DescribeTable's "Table"; `keys` maps attribute
    name to KeyType (HASH/RANGE).
    """
    from cali.core.ports import Health

    try:
        desc = describe()
    except StateBackendError as exc:
        return Health(name, False, str(exc))
    found = {k["AttributeName"]: k["KeyType"] for k in desc.get("KeySchema", [])}
    if found != keys:
        want = ", ".join(f"{kind} {attr}" for attr, kind in keys.items())
        return Health(name, False, f"table {table} has key schema {found}, expected {want}; recreate it with "
                      + create_cmd.format(table=table))
    status = desc.get("TableStatus", "?")
    if status != "ACTIVE":
        return Health(name, False, f"table {table} is {status}; wait until it is ACTIVE")
    return Health(name, True, f"table {table} ACTIVE")


def describe_table(ddb: Any, table: str, hints: dict[str, str]) -> Any:
    """A no-argument DescribeTable for dynamodb_table_health, raising StateBackendError with the hints."""

    def describe() -> dict[str, Any]:
        try:
            return ddb.describe_table(TableName=table)["Table"]
        except Exception as exc:  # ClientError/BotoCoreError, duck-typed as in aws_error
            raise aws_error("DescribeTable", table, exc, hints) from exc

    return describe


def sqlite_health(name: str, path: Path, probe: Any) -> Any:
    """Opens the file and runs `probe()` (returns a short summary) - shared by the SQLite adapters."""
    from cali.core.ports import Health

    try:
        summary = probe()
    except (sqlite3.Error, OSError) as exc:
        return Health(name, False, f"cannot open {path}: {type(exc).__name__}: {exc}; check the directory "
                      "exists and is writable by this user, on a local disk")
    return Health(name, True, f"{path} ok, {summary}")
