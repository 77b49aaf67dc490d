"""One shard's read loop: poll, decode, alert, archive, checkpoint.

Alerting does not wait for the archive. The reader seals buffered rows into batches; a flusher writes
each batch to S3 and then checkpoints it, in order, so the checkpoint only covers durable data. While
S3 or the checkpoint store is down the reader keeps reading and alerting within a memory budget; past
the budget it keeps alerting but stops keeping rows ("alert-ahead"), and reads those records again
once the archive has caught up (the trackers drop what they already counted, by position).
"""

from __future__ import annotations

import gc
import hashlib
import logging
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson

from cali.core.archive import DeadLetter, dlq_key, encode_jsonl_gz, raw_key
from cali.core.decode import Decoded, decode_batch
from cali.core.dedup import RecentIds
from cali.core.filtering import AlertFilter
from cali.core.incidents import Candidate
from cali.core.ports import ArchiveSink, CheckpointStore, Clock, LeaseLost, Rejected, StateStore, Unavailable
from cali.core.records import PREPARED, LogRecord
from cali.service.consumer_status import ReaderStatus

log = logging.getLogger(__name__)
_JSON = orjson.dumps
_UTC_Z = orjson.OPT_UTC_Z


class RecordSource(Protocol):
    """The part of the Kinesis adapter a reader needs (cali.sources.kinesis.KinesisSource)."""

    def shard_iterator(self, shard_id: str, *, after_sequence: str | None = None, start: str = "TRIM_HORIZON",
                       timestamp: datetime | None = None) -> str: ...
    def get_records(self, iterator: str, limit: int = 10000) -> Any: ...


class Stopping(Exception):
    """The reader was asked to stop while waiting on a dependency."""


@dataclass
class ConsumerOptions:
    start: str = "TRIM_HORIZON"
    start_timestamp: datetime | None = None
    poll_interval_s: float = 0.25
    max_records: int = 10_000
    flush_interval_s: float = 1.0
    flush_max_records: int = 5_000
    dedup_window: int = 200_000  # producer retries recognised among this many recent origins
    max_pending_bytes: int = 128 * 1024 * 1024  # rows kept while the archive is behind, then alert-ahead
    send_give_up_s: float = 300.0  # trackers unavailable this long: the batch is set aside (DLQ)
    rejected_retries: int = 2  # a batch the trackers fail on is tried this often before it is split
    background_flush: bool = False  # run() writes batches from a flusher thread; step() alone writes inline


@dataclass
class _Batch:
    rows: list[bytes] = field(default_factory=list)
    dead: list[bytes] = field(default_factory=list)
    first_seq: str | None = None
    last_seq: str | None = None
    first_arrival: datetime | None = None
    opened_mono: float = 0.0
    nbytes: int = 0

    def __len__(self) -> int:
        return len(self.rows) + len(self.dead)

    @property
    def empty(self) -> bool:
        return self.first_seq is None


class ShardConsumer:
    def __init__(self, *, stream: str, shard_id: str, owner: str, source: RecordSource, archive: ArchiveSink,
                 checkpoints: CheckpointStore, state: StateStore, send: Callable[[list[Candidate]], list[Any]],
                 clock: Clock, alert_filter: AlertFilter | None = None, options: ConsumerOptions | None = None,
                 is_child: bool = False, sleep: Callable[[float], Any] | None = None,
                 index: Callable[[list[bytes]], None] | None = None) -> None:
        self.stream, self.shard_id, self.owner = stream, shard_id, owner
        self.source, self.archive, self.checkpoints, self.state = source, archive, checkpoints, state
        self.send, self.clock = send, clock
        self.filter = alert_filter or AlertFilter()
        self.opt = options or ConsumerOptions()
        self.is_child = is_child  # a child of a shard we read: starts at TRIM_HORIZON, whatever `start` says
        # Given each archived batch's rows (cali.service.index_feed.LogFeed): it only queues them, so the
        # index never holds up the flusher, and it sees only what is durable in the archive.
        self.index = index
        self.status = ReaderStatus(shard_id=shard_id)
        self.origins = RecentIds(self.opt.dedup_window)
        self.stop_event = threading.Event()
        self._sleep = sleep or self.stop_event.wait
        self._buf = _Batch()
        self._aside: list[bytes] = []  # DLQ lines of candidates set aside, for the next kept batch
        self._sealed: deque[_Batch] = deque()
        self._pending = 0  # bytes in sealed batches not yet written
        self._lock = threading.Condition()
        self._iterator: str | None = None
        self._last_read: str | None = None  # last sequence whose rows are buffered (or skipped in alert-ahead)
        self._kept: str | None = None  # last sequence whose rows are buffered: where alert-ahead resumes
        self._ahead = False
        self._flush_at: str | None = None  # replay a crashed flush with the same boundaries
        self._backoff = 0.0
        self._rate_mark = (0.0, 0)
        self.lost = threading.Event()

    @property
    def _intent_key(self) -> str:
        return f"flush-intent/{self.stream}/{self.shard_id}"

    # -- reading ---------------------------------------------------------------------------------
    def open(self) -> None:
        checkpoint = self.checkpoints.get_checkpoint(self.stream, self.shard_id)
        intent = self.state.load(self._intent_key)
        if intent and (checkpoint is None or int(intent["last"]) > int(checkpoint)):
            self._flush_at = intent["last"]
        self.status.last_checkpoint = checkpoint
        self._last_read = self._kept = checkpoint
        self._iterator = self._new_iterator()
        self._rate_mark = (self.clock.monotonic(), 0)
        self.status.started_at = self.clock.now().isoformat()
        self.status.state = "reading"

    def _new_iterator(self) -> str:
        if self._kept is not None:
            return self.source.shard_iterator(self.shard_id, after_sequence=self._kept)
        if self.is_child:
            # Everything a split or merge wrote to this child came after its parent ended, which we read
            # to the end: starting LATEST or AT_TIMESTAMP here would skip it.
            return self.source.shard_iterator(self.shard_id, start="TRIM_HORIZON")
        return self.source.shard_iterator(self.shard_id, start=self.opt.start, timestamp=self.opt.start_timestamp)

    def step(self) -> float:
        """One poll; returns how long to wait before the next (Kinesis: 5 GetRecords/s per shard), -1 at the end."""
        from cali.sources.kinesis import IteratorExpired, Throttled  # exception types only

        if self.lost.is_set():
            raise LeaseLost(f"{self.shard_id}: lease lost")
        if not self.opt.background_flush:
            self._write_inline()
        if self._ahead and self._pending <= self.opt.max_pending_bytes // 2:
            # The archive caught up: read again from the last kept record; trackers drop the repeats.
            log.info("shard %s: archive caught up, re-reading from %s to archive what alert-ahead skipped",
                     self.shard_id, self._kept)
            self._ahead = self.status.alert_ahead = False
            self._last_read = self._kept
            self._iterator = self._new_iterator()
        if self._iterator is None:
            return self._finish()
        if self._pending + self._buf.nbytes >= self.opt.max_pending_bytes and not self._ahead:
            self._seal()
            self._ahead = self.status.alert_ahead = True
            log.warning("shard %s: %d bytes wait for the archive; alerting goes on, rows are read again later",
                        self.shard_id, self._pending)
        try:
            batch = self.source.get_records(self._iterator, self.opt.max_records)
        except Throttled:
            self.status.throttled += 1
            self.status.state = "throttled"
            self._backoff = min(max(self._backoff * 2, 0.5), 10.0)
            return self._backoff * (0.5 + random.random() / 2)
        except IteratorExpired:
            # Resume after the last record read, not the checkpoint: the buffer already holds the rest.
            self._iterator = self.source.shard_iterator(self.shard_id, after_sequence=self._last_read) \
                if self._last_read else self._new_iterator()
            return 0.0
        self._backoff = 0.0
        self.status.state = "alert-ahead" if self._ahead else "reading"
        self.status.millis_behind_latest = batch.millis_behind_latest
        if batch.records:
            self._ingest(batch.records)
        self._iterator = batch.next_iterator
        self._maybe_seal()
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
                self._flush_at = None
                self._seal()

    def _ingest_chunk(self, records: list[Any]) -> None:
        now = self.clock.now()
        raws = records  # Kinesis records as the source gave them: data, sequence, arrived_at
        decoded: Decoded = decode_batch(raws, self.shard_id, now)
        rows, positions = decoded.rows, decoded.positions
        kept, candidates, slots = self._select(rows, positions)
        if candidates:
            # Blocks until the trackers acknowledge (or the batch is set aside). If it raises, nothing below
            # has happened: the same records are read again and re-sent, and trackers count them once.
            keys = self._deliver(candidates)
            for i, key in zip(slots, keys, strict=True):
                if key is not None:
                    kept[i]["incident_key"] = key
            self.status.candidates += len(candidates)
        last = raws[-1].sequence
        self._last_read = last
        if self._ahead:  # counted when read again and kept
            self.status.skipped += len(raws)
            return
        self.status.records += len(raws)
        self.status.valid += len(kept)
        self.status.dead += len(decoded.dead)
        b = self._buf
        if b.empty:
            b.first_seq, b.first_arrival, b.opened_mono = raws[0].sequence, raws[0].arrived_at or now, \
                self.clock.monotonic()
        b.last_seq = self._kept = last
        lines = [_JSON(row, option=_UTC_Z) for row in kept]
        b.rows.extend(lines)
        dead = [d.to_json() for d in decoded.dead] + self._aside
        b.dead.extend(dead)
        self._aside = []
        b.nbytes += sum(map(len, lines)) + sum(map(len, dead))

    def _select(self, rows: list[dict[str, Any]], positions: list[tuple[str, int]]
                ) -> tuple[list[dict[str, Any]], list[Candidate], list[int]]:
        """Drops producers' retries; picks the alert candidates. Returns kept rows, candidates, their slots."""
        kept: list[dict[str, Any]] = []
        candidates: list[Candidate] = []
        slots: list[int] = []
        maybe, accepts, seen = self.filter.maybe, self.filter.accepts, self.origins
        for row, pos in zip(rows, positions, strict=True):
            attrs = row.get("attributes")
            origin = None
            if attrs and "log_offset" in attrs and "log_file" in attrs:
                # Where the producer wrote the line: the same line put twice is a retry, not a second event.
                # The timestamp too: a rotated file starts again at offset 0 under the same path.
                origin = (row.get("host"), attrs["log_file"], attrs["log_offset"], row["timestamp"], row["message"])
                # Remembered by its 64-bit hash: 200,000 ints instead of as many tuples holding messages, which
                # the garbage collector would walk on every full collection (a collision is ~1 in 10^9).
                if seen.seen(hash(origin)):
                    self.status.duplicates += 1
                    continue
            level = row["level"]
            if level in maybe and accepts(row["service"], level, row["message"]):
                slots.append(len(kept))
                candidates.append(Candidate(LogRecord.model_validate(row, context=PREPARED), self.shard_id,
                                            (int(pos[0]), pos[1]), _origin_id(origin) if origin else None))
            kept.append(row)
        return kept, candidates, slots

    def _deliver(self, candidates: list[Candidate]) -> list[Any]:
        """Hands candidates to the trackers: retries what is unavailable, splits what they fail on, and
        sets aside (DLQ, with the error) only what keeps failing, so one bad record never wedges a shard."""
        started, delay, rejected = self.clock.monotonic(), 0.1, 0
        while True:
            try:
                return self.send(candidates)
            except Rejected as exc:
                rejected += 1
                if rejected <= self.opt.rejected_retries:
                    continue
                if len(candidates) == 1:
                    self._set_aside(candidates, "alerting_rejected", exc)
                    return [None]
                mid = len(candidates) // 2
                return self._deliver(candidates[:mid]) + self._deliver(candidates[mid:])
            except Unavailable as exc:
                waited = self.clock.monotonic() - started
                if waited >= self.opt.send_give_up_s:
                    self._set_aside(candidates, "alerting_unavailable", exc)
                    return [None] * len(candidates)
                self.status.state = "waiting-for-trackers"
                self.status.last_error = f"trackers: {str(exc)[:300]}"
                log.warning("shard %s: trackers unavailable for %.0fs (%s); retrying", self.shard_id, waited, exc)
                if self._sleep(delay * (0.5 + random.random() / 2)):
                    raise Stopping from exc
                delay = min(delay * 2, 5.0)

    def _set_aside(self, candidates: list[Candidate], reason: str, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {str(exc)[:500]}"
        log.error("shard %s: %d record(s) set aside (%s): %s", self.shard_id, len(candidates), reason, error)
        self.status.set_aside += len(candidates)
        at = self.clock.now()
        for c in candidates:
            line = DeadLetter(reason=reason, error=error, shard_id=self.shard_id, sequence_number=str(c.position[0]),
                              line=c.position[1], data=_JSON(c.record.__dict__, option=_UTC_Z), arrived_at=at)
            self._aside.append(line.to_json())

    # -- sealing and writing ---------------------------------------------------------------------
    def _maybe_seal(self) -> None:
        b = self._buf
        if b.empty or self._flush_at is not None:
            return
        age = self.clock.monotonic() - b.opened_mono
        if len(b) >= self.opt.flush_max_records or age >= self.opt.flush_interval_s or self._iterator is None:
            self._seal()

    def _seal(self) -> None:
        b = self._buf
        if b.empty:
            return
        with self._lock:
            self._sealed.append(b)
            self._pending += b.nbytes
            self._lock.notify_all()
        self._buf = _Batch()
        self._sync_status()
        if not self.opt.background_flush:
            self._write_inline()

    def _write_inline(self) -> None:
        """Without a flusher thread (step() driven alone): write now; a failure is recorded, not raised,
        because reading and alerting go on while the archive is down."""
        try:
            self.write_sealed()
        except LeaseLost:
            raise
        except Exception as exc:
            self._error(exc, "archive")

    def write_sealed(self) -> int:
        """Writes sealed batches in order: intent, raw object, DLQ object, then the checkpoint.

        Raises on the first failure; the batch stays first in line (same key on retry).
        """
        written = 0
        while True:
            with self._lock:
                if not self._sealed:
                    return written
                b = self._sealed[0]
            self._write(b)
            with self._lock:
                self._sealed.popleft()
                self._pending -= b.nbytes
                self._lock.notify_all()
            written += 1
            self._sync_status()

    def _write(self, b: _Batch) -> None:
        assert b.first_seq and b.last_seq and b.first_arrival
        self.state.save(self._intent_key, {"first": b.first_seq, "last": b.last_seq})
        if b.rows:
            self.archive.put_batch(raw_key(self.shard_id, b.first_seq, b.last_seq, b.first_arrival),
                                   encode_jsonl_gz(b.rows))
            self.status.archived_objects += 1
            self.status.archived += len(b.rows)
            if self.index is not None:
                self.index(b.rows)
        if b.dead:
            self.archive.put_batch(dlq_key(self.shard_id, b.first_seq, b.last_seq, b.first_arrival),
                                   encode_jsonl_gz(b.dead))
        try:
            self.checkpoints.put_checkpoint(self.stream, self.shard_id, b.last_seq, self.owner)
        except LeaseLost:
            self.lost.set()
            raise
        self.status.last_checkpoint = b.last_seq
        self.status.last_checkpoint_at = self.clock.now().isoformat()

    def flush_loop(self, stop: threading.Event) -> None:
        """The flusher thread: writes whatever is sealed, with backoff on failure, until stopped and drained."""
        delay = 0.5
        while True:
            with self._lock:
                while not self._sealed and not stop.is_set():
                    self._lock.wait(0.5)
                if not self._sealed and stop.is_set():
                    return
            try:
                self.write_sealed()
                delay = 0.5
            except LeaseLost:
                return
            except Exception as exc:  # S3 or the checkpoint store: keep the batch, try again
                self._error(exc, "archive")
                if stop.wait(delay * (0.5 + random.random() / 2)) and self.lost.is_set():
                    return
                delay = min(delay * 2, 30.0)

    def wait_written(self, timeout_s: float) -> bool:
        """Until every sealed batch is written (True) or the timeout passes (False)."""
        deadline = self.clock.monotonic() + timeout_s
        with self._lock:
            while self._sealed:
                left = deadline - self.clock.monotonic()
                if left <= 0 or self.lost.is_set():
                    return False
                self._lock.wait(min(left, 0.5))
        return True

    def _finish(self) -> float:
        if self._ahead:  # skipped rows must be archived before the shard can be called done
            return self.opt.poll_interval_s
        self._seal()
        if self._sealed:  # not all written yet (the flusher, or S3 still down): the end must wait
            return self.opt.poll_interval_s
        if self.status.state != "shard_end":
            self.checkpoints.mark_shard_end(self.stream, self.shard_id)
            self.status.state = "shard_end"
        return -1.0

    # -- status and the loop -----------------------------------------------------------------------
    def _sync_status(self) -> None:
        self.status.pending_bytes = self._pending + self._buf.nbytes
        self.status.sealed_batches = len(self._sealed)

    def _update_rate(self) -> None:
        t0, n0 = self._rate_mark
        t = self.clock.monotonic()
        if t - t0 >= 1.0:
            self.status.records_per_s = round((self.status.records - n0) / (t - t0), 1)
            self._rate_mark = (t, self.status.records)
        self._sync_status()

    def _error(self, exc: Exception, where: str) -> None:
        self.status.errors += 1
        self.status.last_error = f"{where}: {type(exc).__name__}: {str(exc)[:300]}"
        log.warning("shard %s: %s", self.shard_id, self.status.last_error)

    def run(self, stop: threading.Event, drain_timeout_s: float = 30.0) -> str:
        """Polls until SHARD_END, stop or a lost lease. A stop seals and writes what is buffered first.

        A failing dependency (Kinesis, the trackers) is retried with backoff, keeping the buffer: nothing
        read is dropped, nothing unwritten is checkpointed.
        """
        self.stop_event = stop
        self._sleep = stop.wait
        self.opt.background_flush = True
        flusher_stop = threading.Event()
        flusher = threading.Thread(target=self.flush_loop, args=(flusher_stop,), name=f"flush-{self.shard_id}",
                                   daemon=True)
        outcome = "stopped"
        try:
            self._retrying(self.open, stop)
            if stop.is_set():
                return "stopped"
            flusher.start()
            while not stop.is_set():
                if self.lost.is_set():
                    outcome = "lease_lost"
                    break
                wait = self._retrying(self.step, stop)
                if wait is None:
                    continue
                if wait < 0:
                    outcome = "shard_end"
                    break
                if wait:
                    stop.wait(wait)
        except (Stopping, LeaseLost):
            outcome = "lease_lost" if self.lost.is_set() else "stopped"
        finally:
            if outcome != "lease_lost" and not self.lost.is_set():
                self._seal()
                if not self.wait_written(drain_timeout_s):
                    log.warning("shard %s: stopped with %d batch(es) unwritten; they are read again from the "
                                "checkpoint", self.shard_id, len(self._sealed))
            flusher_stop.set()
            with self._lock:
                self._lock.notify_all()
            if flusher.is_alive():
                flusher.join(timeout=5)
            self.status.state = outcome if outcome != "stopped" else "stopped"
        return outcome

    def _retrying(self, fn: Callable[[], Any], stop: threading.Event) -> Any:
        delay = 0.5
        while True:
            try:
                result = fn()
                if self.status.state == "error":
                    self.status.state = "reading"
                return result
            except (Stopping, LeaseLost):
                raise
            except Exception as exc:  # every dependency error: log, back off, try again
                self._error(exc, "read")
                self.status.state = "error"
                pause = delay * (0.5 + random.random() / 2)
                delay = min(delay * 2, 30.0)
                if stop.wait(pause):
                    return None


def tune_gc_for_reading() -> None:
    """For a process that runs a reader: fewer, later garbage collections.

    Each record allocates a few short-lived dicts and objects that reference counting frees at once; the
    collector's default thresholds still ran often enough to take a quarter of the read loop's CPU
    (measured: 27k -> 35k records per CPU-second). Objects alive now (imports, schemas) are frozen out of
    its walks. Process-wide, so only the reader's own process calls it.
    """
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def _origin_id(origin: tuple[Any, ...]) -> str:
    text = "\x00".join(str(p) for p in origin)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


__all__ = ["ConsumerOptions", "ReaderStatus", "ShardConsumer", "Stopping", "asdict"]
