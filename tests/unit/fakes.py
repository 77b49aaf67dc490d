"""In-memory fakes of the ports, for unit tests of the core and the service layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cali.core.ports import DeliveryReceipt, Health


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
    def __init__(self) -> None:
        self.seq: dict[tuple[str, str], str] = {}
        self.ended: set[tuple[str, str]] = set()

    def get_checkpoint(self, stream, shard_id):
        return self.seq.get((stream, shard_id))

    def put_checkpoint(self, stream, shard_id, sequence, owner):
        cur = self.seq.get((stream, shard_id))
        if cur is None or int(sequence) > int(cur):
            self.seq[(stream, shard_id)] = sequence
        return True

    def mark_shard_end(self, stream, shard_id):
        self.ended.add((stream, shard_id))

    def is_shard_ended(self, stream, shard_id):
        return (stream, shard_id) in self.ended

    def healthcheck(self):
        return Health("memory-checkpoints", True, "")


class MemoryState:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def load(self, key):
        return self.data.get(key)

    def save(self, key, value):
        self.data[key] = value

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
