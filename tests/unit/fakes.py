"""In-memory fakes of the ports, for unit tests of the core and the service layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from cali.core.ports import DeliveryReceipt, Health, Lease, LeaseLost


@dataclass
class FakeRecord:
    data: bytes
    sequence: str
    partition_key: str = "k"
    arrived_at: datetime = datetime(2026, 11, 26, 12, tzinfo=UTC)


@dataclass
class FakeBatch:
    records: list[FakeRecord]
    next_iterator: str | None
    millis_behind_latest: int | None = 0


class FakeShard:
    """A shard: records by position; iterators are positions; closed shards end after their records."""

    def __init__(self, records: list[bytes], closed: bool = False, page: int = 3) -> None:
        self.records = [FakeRecord(d, str(100 + i)) for i, d in enumerate(records)]
        self.closed, self.page = closed, page

    def shard_iterator(self, shard_id, *, after_sequence=None, start="TRIM_HORIZON", timestamp=None) -> str:
        if after_sequence is None:
            return "0"
        return str(next(i + 1 for i, r in enumerate(self.records) if r.sequence == after_sequence))

    def get_records(self, iterator: str, limit: int = 10000) -> FakeBatch:
        i = int(iterator)
        chunk = self.records[i:i + min(limit, self.page)]
        nxt = i + len(chunk)
        done = self.closed and nxt >= len(self.records)
        return FakeBatch(chunk, None if done else str(nxt), len(self.records) - nxt)


class MemoryArchive:
    def __init__(self, fail: bool = False) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts = 0
        self.fail = fail

    def put_batch(self, key: str, body: bytes) -> None:
        if self.fail:
            raise OSError("S3 is down")
        self.puts += 1
        self.objects[key] = body

    def healthcheck(self) -> Health:
        return Health("memory-archive", True, "")


class MemoryCheckpoints:
    """The lease table's semantics (cali/state/*_checkpoints.py) in a dict."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}

    def _row(self, stream, shard_id):
        return self.rows.setdefault((stream, shard_id), {"owner": None, "counter": 0, "seq": None, "ended": False})

    def get_checkpoint(self, stream, shard_id):
        return self._row(stream, shard_id)["seq"]

    def put_checkpoint(self, stream, shard_id, sequence, owner):
        row = self._row(stream, shard_id)
        if row["owner"] != owner:
            raise LeaseLost(f"{shard_id} is held by {row['owner']}")
        if row["seq"] is None or int(sequence) > int(row["seq"]):
            row["seq"] = sequence
            return True
        return False

    def mark_shard_end(self, stream, shard_id):
        self._row(stream, shard_id)["ended"] = True

    def is_shard_ended(self, stream, shard_id):
        return self._row(stream, shard_id)["ended"]

    def get_lease(self, stream, shard_id):
        r = self._row(stream, shard_id)
        return Lease(f"{stream}/{shard_id}", r["owner"], r["counter"], r["seq"], r["ended"])

    def take_lease(self, stream, shard_id, owner, expected_counter):
        r = self._row(stream, shard_id)
        if r["counter"] != expected_counter:
            return None
        r["owner"], r["counter"] = owner, expected_counter + 1
        return self.get_lease(stream, shard_id)

    def renew_lease(self, stream, shard_id, owner, counter):
        r = self._row(stream, shard_id)
        if r["owner"] != owner or r["counter"] != counter:
            return None
        r["counter"] += 1
        return r["counter"]

    def release_lease(self, stream, shard_id, owner, counter):
        r = self._row(stream, shard_id)
        if r["owner"] != owner or r["counter"] != counter:
            return False
        r["owner"], r["counter"] = None, counter + 1
        return True

    def healthcheck(self):
        return Health("memory-checkpoints", True, "")


class MemoryState:
    """Documents by key and scopes of items, as the SQLite and DynamoDB state stores keep them."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}
        self.scopes: dict[str, dict[str, dict[str, Any]]] = {}
        self.commits: list[tuple[str, dict[str, Any], set[str]]] = []
        self.fail: Exception | None = None

    def load(self, key):
        return self.data.get(key)

    def save(self, key, value):
        self.data[key] = value

    def load_scope(self, scope):
        if self.fail:
            raise self.fail
        return {k: orjson.loads(orjson.dumps(v)) for k, v in self.scopes.get(scope, {}).items()}

    def commit(self, scope, puts, deletes=()):
        if self.fail:
            raise self.fail
        items = self.scopes.setdefault(scope, {})
        for name in deletes:
            items.pop(name, None)
        # Stored as JSON, as the real stores do: what comes back is what JSON gives back.
        items.update({k: orjson.loads(orjson.dumps(v)) for k, v in puts.items()})
        self.commits.append((scope, dict(puts), set(deletes)))

    def healthcheck(self):
        return Health("memory-state", True, "")


class MemoryOutbox:
    def __init__(self) -> None:
        self.items: dict[str, Any] = {}
        self.delivered: dict[str, DeliveryReceipt] = {}

    def enqueue(self, alerts):
        for a in alerts:
            self.items.setdefault(a.alert_id, a)

    def pending(self, limit):
        return [a for k, a in self.items.items() if k not in self.delivered][:limit]

    def mark_delivered(self, alert_id, receipt):
        self.delivered[alert_id] = receipt

    def receipt(self, alert_id):
        return self.delivered.get(alert_id)

    def healthcheck(self):
        return Health("memory-outbox", True, "")


@dataclass
class Recorder:
    batches: list[list[Any]] = field(default_factory=list)

    def __call__(self, candidates):
        self.batches.append(list(candidates))
        return [f"{c.record.service}|{c.record.level.value}|g1" for c in candidates]
