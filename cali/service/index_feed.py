"""Feeds the index from the pipeline without ever holding it up.

`LogFeed` is handed each archived batch (the same JSON rows that went to S3) by a shard's flusher; its
own thread decodes them, keeps the configured levels and writes them in batches. `IncidentFeed` is
handed each delivered alert by the Alerter and merges it into its incident. Both only append to a
bounded queue on the caller's thread: while the index is down they retry with backoff, and past the
bound they drop the oldest waiting work, counted (logs stay in the S3 archive; alerts in the outbox).
Documents the index refuses for good go to the dead-letter area with the index's reason.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from cali.core.alerts import Alert
from cali.core.archive import DeadLetter, DeadLetterReason, dlq_key, encode_jsonl_gz
from cali.core.index import log_document
from cali.core.ports import ArchiveSink, Clock
from cali.index.port import DocumentRejected, IndexWriter

log = logging.getLogger(__name__)


@dataclass
class FeedStats:
    queued: int = 0  # waiting now
    indexed: int = 0
    rejected: int = 0
    dropped: int = 0  # dropped while the index was down and the queue full
    failures: int = 0  # write attempts that failed and were retried
    last_error: str | None = None


class _Worker:
    """A bounded queue drained by one daemon thread, with exponential backoff on failure."""

    def __init__(self, name: str, max_items: int, sleep: Callable[[float], Any] | None) -> None:
        self.name, self.max_items = name, max_items
        self.stats = FeedStats()
        self._items: deque[Any] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._sleep = sleep or self._stop.wait
        self._thread: threading.Thread | None = None
        self._busy = False  # a batch taken off the queue and not yet written

    def _put(self, items: Iterable[Any]) -> None:
        with self._cond:
            self._items.extend(items)
            over = len(self._items) - self.max_items
            for _ in range(max(over, 0)):
                self._items.popleft()
            if over > 0:
                self.stats.dropped += over
            self.stats.queued = len(self._items)
            self._cond.notify()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Writes what is queued (for at most timeout_s), then stops."""
        self.flush(timeout_s)
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def flush(self, timeout_s: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._items and not self._busy, timeout_s)

    def run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(lambda: self._items or self._stop.is_set(), 1.0)
                batch = self._take()
                self._busy = bool(batch)
            if not batch:
                self._idle()
                continue
            try:
                self._write(batch)
                delay = 0.5
            except Exception as exc:  # the index is down or refuses the whole call: put it back, wait
                self.stats.failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                log.warning("%s: index write failed, retrying in %.1fs: %s", self.name, delay, self.stats.last_error)
                with self._cond:
                    self._items.extendleft(reversed(batch))
                    self.stats.queued = len(self._items)
                self._sleep(delay * (0.5 + random.random() / 2))
                delay = min(delay * 2, 30.0)
            finally:
                with self._cond:
                    self._busy = False
                    self.stats.queued = len(self._items)
                    self._cond.notify_all()

    def _take(self) -> list[Any]:
        raise NotImplementedError

    def _write(self, batch: list[Any]) -> None:
        raise NotImplementedError

    def _idle(self) -> None:
        pass


class LogFeed(_Worker):
    """Called with each archived batch's JSON rows; indexes the rows at `levels`."""

    def __init__(self, writer: IndexWriter, *, levels: Iterable[str], shard_id: str, clock: Clock,
                 dead_letters: ArchiveSink | None = None, max_rows: int = 200_000, batch_rows: int = 2_000,
                 retention_every_s: float = 600.0, sleep: Callable[[float], Any] | None = None) -> None:
        super().__init__(f"index-{shard_id}", max_rows, sleep)
        self.writer, self.shard_id, self.clock = writer, shard_id, clock
        self.levels = frozenset(str(lv) for lv in levels)
        self.dead_letters = dead_letters
        self.batch_rows = batch_rows
        self.retention_every_s = retention_every_s
        self._next_retention = clock.monotonic() + retention_every_s * random.random()

    def __call__(self, rows: Sequence[bytes]) -> None:
        """The flusher's hook: O(1) per batch here; decoding and filtering happen on the feed's thread."""
        if rows:
            self._put(rows)

    def _take(self) -> list[bytes]:
        n = min(self.batch_rows, len(self._items))
        return [self._items.popleft() for _ in range(n)]

    def _write(self, lines: list[bytes]) -> None:
        docs, kept = [], []
        for line in lines:
            row = orjson.loads(line)
            if row.get("level") in self.levels:
                docs.append(log_document(row))
                kept.append(line)
        if not docs:
            return
        result = self.writer.write_logs(docs)
        self.stats.indexed += result.written
        if result.rejected:
            self.stats.rejected += len(result.rejected)
            self._dead_letter([(kept[i], reason) for i, reason in result.rejected])

    def _dead_letter(self, rejected: list[tuple[bytes, str]]) -> None:
        """dlq/dt=…/<shard>.index-<first>-<last>.jsonl.gz: the reader's own DLQ objects keep their keys."""
        at = self.clock.now()
        letters, seqs = [], []
        for line, reason in rejected:
            _, seq, pos = (orjson.loads(line).get("event_id") or "::0").rsplit(":", 2)
            seq = seq if seq.isdigit() else "0"
            seqs.append(int(seq))
            letters.append(DeadLetter(reason=DeadLetterReason.INDEX_REJECTED, error=reason[:1000],
                                      shard_id=self.shard_id, sequence_number=seq,
                                      line=int(pos) if pos.isdigit() else 0, data=line, arrived_at=at).to_json())
        log.error("shard %s: %d document(s) refused by the index, e.g. %s", self.shard_id, len(letters),
                  rejected[0][1][:300])
        if self.dead_letters is None:
            return
        key = dlq_key(f"{self.shard_id}.index", str(min(seqs)), str(max(seqs)), at)
        try:
            self.dead_letters.put_batch(key, encode_jsonl_gz(letters))
        except Exception as exc:  # the rows themselves are archived; losing this report is logged, not fatal
            log.error("shard %s: writing %s failed: %s", self.shard_id, key, exc)

    def _idle(self) -> None:
        if self.clock.monotonic() < self._next_retention:
            return
        self._next_retention = self.clock.monotonic() + self.retention_every_s
        apply = getattr(self.writer, "apply_retention", None)
        if apply is not None:
            try:
                removed = apply(self.clock.now())
                if removed:
                    log.info("index retention removed %d log documents", removed)
            except Exception as exc:  # retention runs again later
                log.warning("index retention failed: %s", exc)


class IncidentFeed(_Worker):
    """Called with each delivered alert (the DeliveryLoop's on_delivered); merges it into its incident."""

    def __init__(self, writer: IndexWriter, *, max_alerts: int = 10_000,
                 sleep: Callable[[float], Any] | None = None) -> None:
        super().__init__("index-incidents", max_alerts, sleep)
        self.writer = writer

    def __call__(self, alert: Alert) -> None:
        self._put([alert])

    def _take(self) -> list[Alert]:
        return [self._items.popleft()] if self._items else []

    def _write(self, batch: list[Alert]) -> None:
        for alert in batch:
            try:
                self.writer.add_alert(alert)
            except DocumentRejected as exc:  # would fail again: keep the reason, go on with the next alert
                self.stats.rejected += 1
                self.stats.last_error = str(exc)[:300]
                log.error("incident document for %s refused by the index: %s", alert.alert_id, exc)
                continue
            self.stats.indexed += 1

