"""Ships tailed log events to Kinesis with PutRecords; offsets advance only past what the stream accepted."""

from __future__ import annotations

import base64
import fnmatch
import glob
import hashlib
import logging
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from cali.core.clock import SystemClock
from cali.core.parsing import FORMATS, LogFormat, MultilineJoiner, Source, parse_event, to_kinesis_data
from cali.core.ports import Clock
from cali.ship.offsets import OffsetsFile
from cali.ship.tail import Event, FileTail
from cali.sources.kinesis import KinesisError, KinesisSource, PutEntry

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 1024 * 1024  # Kinesis: data + partition key of one record
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 5 * 1024 * 1024
PARTITION_KEYS = ("event", "service", "host", "random")
GLOB_CHARS = frozenset("*?[")


@dataclass
class _Out:
    event: Event
    entry: PutEntry
    size: int
    attempts: int = 0
    not_before: float = 0.0


class Shipper:
    """Tails each source's path (or every file its glob matches, new ones included) and puts events.

    `formats` is every format a source may name (cali.ship.settings.ShipConfig.catalog()); a path
    is read from its start the first time it is seen, then from the offsets file.
    """

    def __init__(self, sources: Sequence[Source], kinesis: KinesisSource, offsets_path: Path, *, host: str,
                 partition_key: str = "event", clock: Clock | None = None, flush_after_s: float = 0.5,
                 max_batch_records: int = MAX_BATCH_RECORDS, max_batch_bytes: int = MAX_BATCH_BYTES,
                 max_inflight_records: int = 10_000, max_inflight_bytes: int = 32 * 1024 * 1024,
                 rotate_wait_s: float = 1.0, backoff_base_s: float = 0.1, backoff_max_s: float = 5.0,
                 dlq_path: Path | None = None, rng: random.Random | None = None,
                 formats: Mapping[str, LogFormat] | None = None, rescan_interval_s: float = 5.0) -> None:
        if partition_key not in PARTITION_KEYS:
            raise ValueError(f"partition_key must be one of {PARTITION_KEYS}, got {partition_key!r}")
        if not 1 <= max_batch_records <= MAX_BATCH_RECORDS:
            raise ValueError(f"max_batch_records must be 1..{MAX_BATCH_RECORDS}")
        if not MAX_RECORD_BYTES <= max_batch_bytes <= MAX_BATCH_BYTES:
            raise ValueError(f"max_batch_bytes must be {MAX_RECORD_BYTES}..{MAX_BATCH_BYTES}")
        self.formats = dict(formats or FORMATS)
        unknown = sorted({s.format for s in sources} - self.formats.keys())
        if unknown:
            raise ValueError(f"unknown log formats {unknown}; known: {sorted(self.formats)}")
        self.kinesis = kinesis
        self.host = host
        self.partition_key = partition_key
        self.clock = clock or SystemClock()
        self.max_batch_records = max_batch_records
        self.max_batch_bytes = max_batch_bytes
        self.max_inflight_records = max_inflight_records
        self.max_inflight_bytes = max_inflight_bytes
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.rng = rng or random.Random()
        self.offsets = OffsetsFile(Path(offsets_path))
        self.dlq_path = dlq_path or Path(offsets_path).parent / "shipper-dlq.jsonl"
        self.flush_after_s = flush_after_s
        self.rotate_wait_s = rotate_wait_s
        self.rescan_interval_s = rescan_interval_s
        self._saved = self.offsets.load()
        self._sources = list(sources)
        # Keyed by absolute path: offsets must not depend on the working directory.
        self._tails: dict[str, tuple[Source, FileTail]] = {}
        # Glob files shipped to their end, (dev, inode) -> size then: a rotated name the glob also
        # matches is skipped while it still holds exactly that (a reused inode will not).
        self._finished: dict[tuple[int, int], int] = {}
        self._next_scan = float("-inf")
        for src in self._sources:
            if _is_glob(src.path):
                for key in sorted(self._saved):  # resume generations owed, even if renamed away since
                    if _glob_matches(src.path, key):
                        self._add_tail(src, key, label=_label(src.path, key))
            else:
                self._add_tail(src, src.path, label=src.path)
        self._queue: deque[_Out] = deque()
        self._queued_bytes = 0
        self._paused = False
        self._stats = {"lines": 0, "events": 0, "records_put": 0, "retries": 0, "dlq": 0, "put_calls": 0,
                       "put_errors": 0}

    @property
    def stats(self) -> dict[str, int]:
        return dict(self._stats, queued=len(self._queue))

    # -- tailing -----------------------------------------------------------------------------------

    def _has_room(self) -> bool:
        room = len(self._queue) < self.max_inflight_records and self._queued_bytes < self.max_inflight_bytes
        self._paused = self._paused or not room
        return room

    def _emitter(self, src: Source):
        def emit(event: Event) -> None:
            self._stats["events"] += 1
            ingested = self.clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
            record = parse_event(self.formats[src.format], event.text, service=src.service, host=self.host,
                                 ingested=ingested, origin=(event.log_file, event.origin))
            data = to_kinesis_data(record)
            key = self._key(src, event.text)
            size = len(data) + len(key.encode())
            if size > MAX_RECORD_BYTES:
                self._dead_letter(src, event, data, f"record of {size} bytes exceeds Kinesis's "
                                                    f"{MAX_RECORD_BYTES}-byte limit")
                return
            self._queue.append(_Out(event, PutEntry(data, key), size))
            self._queued_bytes += size
        return emit

    def _key(self, src: Source, text: str) -> str:
        if self.partition_key == "service":
            return src.service
        if self.partition_key == "host":
            return self.host
        if self.partition_key == "random":
            return uuid.UUID(int=self.rng.getrandbits(128)).hex
        # Stable across re-sends, so a duplicate after a crash lands on the same shard as the original.
        return hashlib.blake2b(f"{src.service}\x00{text}".encode("utf-8", "replace"), digest_size=16).hexdigest()

    def _dead_letter(self, src: Source, event: Event, data: bytes, reason: str) -> None:
        line = {"reason": reason, "service": src.service, "path": event.gen.path, "offset": event.start,
                "size": len(data), "at": self.clock.now().isoformat(),
                "data_b64": base64.b64encode(data).decode()}
        self.dlq_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.dlq_path, "ab") as f:
            f.write(orjson.dumps(line) + b"\n")
            f.flush()
        log.warning("dead-lettered an event from %s at offset %d: %s (in %s)", event.gen.path, event.start,
                    reason, self.dlq_path)
        self._stats["dlq"] += 1
        event.ack()

    def _add_tail(self, src: Source, path: str, label: str) -> None:
        key = os.path.abspath(path)
        if key in self._tails:
            return
        fmt = self.formats[src.format]
        self._tails[key] = (src, FileTail(
            Path(key), lambda fmt=fmt: MultilineJoiner(fmt, flush_after_s=self.flush_after_s),
            rotate_wait_s=self.rotate_wait_s, saved=self._saved.pop(key, None), label=label))

    def _scan(self, now: float) -> None:
        """Finds the files each glob matches now (Fluent Bit: refresh_interval); drops finished ones."""
        self._next_scan = now + self.rescan_interval_s
        for key, (src, tail) in list(self._tails.items()):
            if _is_glob(src.path) and tail.idle:
                del self._tails[key]
        held = {(g.dev, g.ino) for _, t in self._tails.values() for g in t.generations()}
        seen: set[tuple[int, int]] = set()
        for src in self._sources:
            if not _is_glob(src.path):
                continue
            for match in sorted(glob.glob(src.path)):
                try:
                    st = os.stat(match)
                except OSError:
                    continue
                ident = (st.st_dev, st.st_ino)
                seen.add(ident)
                if os.path.abspath(match) in self._tails or not os.path.isfile(match):
                    continue
                # A rotated file the glob also matches is a generation we follow, or shipped whole.
                if ident in held or self._finished.get(ident) == st.st_size:
                    continue
                self._add_tail(src, match, label=match)
        self._finished = {k: v for k, v in self._finished.items() if k in seen}

    def _tail_all(self, now: float) -> None:
        if now >= self._next_scan:
            self._scan(now)
        for src, tail in self._tails.values():
            if not _is_glob(src.path):
                self._stats["lines"] += tail.poll(now, self._has_room, self._emitter(src))
                continue
            before = tail.generations()
            self._stats["lines"] += tail.poll(now, self._has_room, self._emitter(src))
            for gen in before:
                if gen.closed:
                    self._finished[(gen.dev, gen.ino)] = gen.read_pos

    # -- putting -----------------------------------------------------------------------------------

    def _next_batch(self, now: float) -> list[_Out]:
        batch: list[_Out] = []
        size = 0
        skipped: list[_Out] = []
        while self._queue and len(batch) < self.max_batch_records:
            out = self._queue[0]
            if out.not_before > now:  # backing off: keep it queued, look further
                skipped.append(self._queue.popleft())
                continue
            if size + out.size > self.max_batch_bytes:
                break
            batch.append(self._queue.popleft())
            size += out.size
        self._queue.extendleft(reversed(skipped))
        self._queued_bytes -= size
        return batch

    def _backoff(self, attempts: int) -> float:
        delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempts - 1))
        return delay * (0.5 + self.rng.random() / 2)

    def _requeue(self, failed: list[_Out], now: float) -> None:
        for out in failed:
            out.attempts += 1
            out.not_before = now + self._backoff(out.attempts)
            self._stats["retries"] += 1
        self._queue.extendleft(reversed(failed))  # retried first: keeps the oldest offsets moving
        self._queued_bytes += sum(o.size for o in failed)

    def _put(self, batch: list[_Out], now: float) -> int:
        self._stats["put_calls"] += 1
        try:
            results = self.kinesis.put_records([o.entry for o in batch])
        except KinesisError as exc:
            self._stats["put_errors"] += 1
            log.warning("PutRecords of %d records failed, retrying all: %s", len(batch), exc)
            self._requeue(batch, now)
            return 0
        failed = []
        for out, res in zip(batch, results, strict=True):
            if res.ok:
                out.event.ack()
            else:
                failed.append(out)
        if failed:
            codes = sorted({r.error_code or "?" for r in results if not r.ok})
            log.info("PutRecords: %d of %d records failed (%s), retrying only those", len(failed), len(batch),
                     ", ".join(codes))
            self._requeue(failed, now)
        put = len(batch) - len(failed)
        self._stats["records_put"] += put
        return put

    def _put_ready(self, now: float) -> int:
        put = 0
        while True:
            batch = self._next_batch(now)
            if not batch:
                return put
            put += self._put(batch, now)

    # -- loop --------------------------------------------------------------------------------------

    def commit(self) -> bool:
        """Writes the offsets file: per generation, the start of the oldest event not yet accepted."""
        files = {}
        for key, (_, tail) in self._tails.items():
            offs = tail.offsets()
            if offs:
                files[key] = offs
        return self.offsets.save(files)

    def run_once(self, now: float | None = None) -> int:
        """One poll: tail every file, put every ready record, commit offsets. Returns records put."""
        now = self.clock.monotonic() if now is None else now
        put = 0
        for _ in range(64):  # bounded: the caller's loop comes back soon anyway
            self._paused = False
            self._tail_all(now)
            put += self._put_ready(now)
            # Go round again only if reading stopped on a full buffer that putting has since emptied.
            if not self._paused or self._queue:
                break
        self.commit()
        return put

    def drain(self, timeout_s: float = 5.0) -> int:
        """Puts what is queued (retrying within the timeout) and commits; pending joins stay uncommitted."""
        deadline = self.clock.monotonic() + timeout_s
        put = 0
        while self._queue and self.clock.monotonic() < deadline:
            put += self._put_ready(self.clock.monotonic())
            if self._queue:
                time.sleep(0.02)
        self.commit()
        return put

    def run(self, stop_event: threading.Event, poll_interval: float = 0.05) -> None:
        try:
            while not stop_event.is_set():
                self.run_once()
                stop_event.wait(poll_interval)
            self.drain()
        finally:
            self.close()

    def close(self) -> None:
        for _, tail in self._tails.values():
            tail.close()


def _is_glob(path: str) -> bool:
    return any(c in GLOB_CHARS for c in path)


def _glob_matches(pattern: str, abs_path: str) -> bool:
    # fnmatch's * also crosses "/", so the number of path parts must agree as glob's does.
    pat = os.path.abspath(pattern)
    return pat.count(os.sep) == abs_path.count(os.sep) and fnmatch.fnmatchcase(abs_path, pat)


def _label(pattern: str, abs_path: str) -> str:
    # The name glob.glob(pattern) would have returned: relative when the pattern is.
    return abs_path if os.path.isabs(pattern) else os.path.relpath(abs_path)
