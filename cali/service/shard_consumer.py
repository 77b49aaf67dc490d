"""One shard's read loop: poll, decode, alert, archive, checkpoint - in that order of durability."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

from cali.core.archive import dlq_key, encode_jsonl_gz, raw_key
from cali.core.decode import Decoded, RawRecord, decode_batch
from cali.core.dedup import RecentIds
from cali.core.filtering import AlertFilter
from cali.core.fingerprint import fingerprint
from cali.core.incidents import Candidate
from cali.core.ports import ArchiveSink, CheckpointStore, Clock, StateStore
from cali.core.records import to_json_line

log = logging.getLogger(__name__)


class RecordSource(Protocol):
    """The part of the Kinesis adapter a reader needs (cali.sources.kinesis.KinesisSource)."""

    def shard_iterator(self, shard_id: str, *, after_sequence: str | None = None, start: str = "TRIM_HORIZON",
                       timestamp: datetime | None = None) -> str: ...
    def get_records(self, iterator: str, limit: int = 10000) -> Any: ...


@dataclass
class ConsumerOptions:
    start: str = "TRIM_HORIZON"
    start_timestamp: datetime | None = None
    poll_interval_s: float = 0.25
    max_records: int = 10_000
    flush_interval_s: float = 1.0
    flush_max_records: int = 5_000
    dedup_window: int = 200_000


@dataclass
class ReaderStatus:
    shard_id: str
    state: str = "starting"  # starting | reading | throttled | shard_end | stopped
    records: int = 0
    valid: int = 0
    dead: int = 0
    duplicates: int = 0
    candidates: int = 0
    archived_objects: int = 0
    millis_behind_latest: int | None = None
    records_per_s: float = 0.0
    last_checkpoint: str | None = None
    last_checkpoint_at: str | None = None
    throttled: int = 0
    errors: int = 0
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Buffer:
    rows: list[bytes] = field(default_factory=list)
    dead: list[bytes] = field(default_factory=list)
    first_seq: str | None = None
    last_seq: str | None = None
    first_arrival: datetime | None = None
    opened_mono: float = 0.0

    def __len__(self) -> int:
        return len(self.rows) + len(self.dead)

    @property
    def empty(self) -> bool:
        return self.first_seq is None


class ShardConsumer:
    def __init__(self, *, stream: str, shard_id: str, owner: str, source: RecordSource, archive: ArchiveSink,
                 checkpoints: CheckpointStore, state: StateStore, send: Callable[[list[Candidate]], None],
                 clock: Clock, alert_filter: AlertFilter | None = None,
                 options: ConsumerOptions | None = None) -> None:
        self.stream, self.shard_id, self.owner = stream, shard_id, owner
        self.source, self.archive, self.checkpoints, self.state = source, archive, checkpoints, state
        self.send, self.clock = send, clock
        self.filter = alert_filter or AlertFilter()
        self.opt = options or ConsumerOptions()
        self.status = ReaderStatus(shard_id=shard_id)
        self.recent = RecentIds(self.opt.dedup_window)
        self._buf = _Buffer()
        self._iterator: str | None = None
        self._last_read: str | None = None
        self._flush_at: str | None = None  # replay a crashed flush with the same boundaries
        self._backoff = 0.0
        self._rate_mark = (0.0, 0)
        self._flush_unfinished = False

    @property
    def _intent_key(self) -> str:
        return f"flush-intent/{self.stream}/{self.shard_id}"

    def open(self) -> None:
        checkpoint = self.checkpoints.get_checkpoint(self.stream, self.shard_id)
        intent = self.state.load(self._intent_key)
        if intent and (checkpoint is None or int(intent["last"]) > int(checkpoint)):
            self._flush_at = intent["last"]
        self.status.last_checkpoint = checkpoint
        self._last_read = checkpoint
        self._iterator = self._new_iterator()
        self._rate_mark = (self.clock.monotonic(), 0)
        self.status.state = "reading"

    def _new_iterator(self) -> str:
        if self._last_read is not None:
            return self.source.shard_iterator(self.shard_id, after_sequence=self._last_read)
        return self.source.shard_iterator(self.shard_id, start=self.opt.start, timestamp=self.opt.start_timestamp)

    def step(self) -> float:
        """One poll; returns how long to wait before the next (Kinesis: 5 GetRecords/s per shard)."""
        from cali.sources.kinesis import IteratorExpired, Throttled  # exception types only

        if self._flush_unfinished:
            # A failed flush is retried before reading on, so its key range (and intent) stays the same.
            self.flush()
        if self._iterator is None:
            return self._finish()
        try:
            batch = self.source.get_records(self._iterator, self.opt.max_records)
        except Throttled:
            self.status.throttled += 1
            self.status.state = "throttled"
            self._backoff = min(max(self._backoff * 2, 0.5), 10.0)
            return self._backoff * (0.5 + random.random() / 2)
        except IteratorExpired:
            # Resume after the last record read, not the checkpoint: the buffer already holds the rest.
            self._iterator = self._new_iterator()
            return 0.0
        self._backoff = 0.0
        self.status.state = "reading"
        self.status.millis_behind_latest = batch.millis_behind_latest
        if batch.records:
            self._ingest(batch.records)
        self._iterator = batch.next_iterator
        self._maybe_flush()
        self._update_rate()
        if self._iterator is None:
            return self._finish()
        behind = batch.millis_behind_latest or 0
        return 0.2 if batch.records and behind > 0 else self.opt.poll_interval_s

    def _ingest(self, records: list[Any]) -> None:
        while records:
            chunk = records
            if self._flush_at is not None:
                cut = next((i + 1 for i, r in enumerate(records) if int(r.sequence) >= int(self._flush_at)),
                           len(records))
                chunk, records = records[:cut], records[cut:]
            else:
                records = []
            self._ingest_chunk(chunk)
            if self._flush_at is not None and self._last_read is not None \
                    and int(self._last_read) >= int(self._flush_at):
                self.flush()

    def _ingest_chunk(self, records: list[Any]) -> None:
        raws = [RawRecord(r.data, r.sequence, r.arrived_at or self.clock.now(), r.partition_key) for r in records]
        decoded: Decoded = decode_batch(raws, self.shard_id)
        fresh, here = [], set()
        for rec in decoded.records:
            if rec.event_id in self.recent or rec.event_id in here:
                continue
            here.add(rec.event_id)
            fresh.append(rec)
        candidates = [Candidate(rec, fingerprint(rec)) for rec in fresh if self.filter.accepts(rec)]
        if candidates:
            # Blocks until the trackers acknowledge. If it raises, nothing below has happened: the
            # same records are read again and re-sent (at-least-once), none is marked as seen.
            self.send(candidates)
            self.status.candidates += len(candidates)
        b = self._buf
        if b.empty:
            b.first_seq, b.first_arrival, b.opened_mono = raws[0].sequence_number, raws[0].arrived_at, \
                self.clock.monotonic()
        b.last_seq = raws[-1].sequence_number
        self._last_read = b.last_seq
        b.rows.extend(to_json_line(rec) for rec in fresh)
        b.dead.extend(d.to_json() for d in decoded.dead)
        for rec in fresh:
            self.recent.add(rec.event_id)
        self.status.records += len(raws)
        self.status.valid += len(fresh)
        self.status.duplicates += len(decoded.records) - len(fresh)
        self.status.dead += len(decoded.dead)

    def _maybe_flush(self) -> None:
        b = self._buf
        if b.empty or self._flush_at is not None:
            return
        age = self.clock.monotonic() - b.opened_mono
        if len(b) >= self.opt.flush_max_records or age >= self.opt.flush_interval_s or self._iterator is None:
            self.flush()

    def flush(self) -> None:
        """Archive and DLQ writes, then the checkpoint: only durable data is checkpointed."""
        b = self._buf
        if b.empty:
            return
        assert b.first_seq and b.last_seq and b.first_arrival
        self._flush_unfinished = True
        self.state.save(self._intent_key, {"first": b.first_seq, "last": b.last_seq})
        if b.rows:
            self.archive.put_batch(raw_key(self.shard_id, b.first_seq, b.last_seq, b.first_arrival),
                                   encode_jsonl_gz(b.rows))
            self.status.archived_objects += 1
        if b.dead:
            self.archive.put_batch(dlq_key(self.shard_id, b.first_seq, b.last_seq, b.first_arrival),
                                   encode_jsonl_gz(b.dead))
        self.checkpoints.put_checkpoint(self.stream, self.shard_id, b.last_seq, self.owner)
        self.status.last_checkpoint = b.last_seq
        self.status.last_checkpoint_at = self.clock.now().isoformat()
        self._flush_at = None
        self._buf = _Buffer()
        self._flush_unfinished = False

    def _finish(self) -> float:
        self.flush()
        if self.status.state != "shard_end":
            self.checkpoints.mark_shard_end(self.stream, self.shard_id)
            self.status.state = "shard_end"
        return -1.0

    def _update_rate(self) -> None:
        t0, n0 = self._rate_mark
        t = self.clock.monotonic()
        if t - t0 >= 1.0:
            self.status.records_per_s = round((self.status.records - n0) / (t - t0), 1)
            self._rate_mark = (t, self.status.records)

    def run(self, stop: threading.Event) -> str:
        """Polls until SHARD_END or stop; a stop flushes what is buffered first.

        A failing dependency (Kinesis, S3, the checkpoint store) is retried with backoff, keeping the
        buffer: nothing read is dropped, nothing unwritten is checkpointed.
        """
        self._retrying(self.open, stop)
        while not stop.is_set():
            wait = self._retrying(self.step, stop)
            if wait is None:
                continue
            if wait < 0:
                return "shard_end"
            if wait:
                stop.wait(wait)
        self._retrying(self.flush, stop, attempts=3)
        self.status.state = "stopped"
        return "stopped"

    def _retrying(self, fn: Callable[[], Any], stop: threading.Event, attempts: int | None = None) -> Any:
        delay = 0.5
        n = 0
        while True:
            try:
                result = fn()
                if self.status.state == "error":
                    self.status.state = "reading"
                return result
            except Exception as exc:  # every dependency error: log, back off, try again
                n += 1
                self.status.errors += 1
                self.status.state = "error"
                self.status.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                log.warning("shard %s: %s; retrying in %.1fs", self.shard_id, self.status.last_error, delay)
                pause = delay * (0.5 + random.random() / 2)
                delay = min(delay * 2, 30.0)
                if attempts is not None:  # the final flush on stop: a few real tries, then report it
                    if n >= attempts:
                        raise
                    time.sleep(pause)
                elif stop.wait(pause):
                    return None
