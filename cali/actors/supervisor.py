"""StreamSupervisor: one ShardReader per shard this pipeline holds the lease of, parents before children."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import ray

from cali import bootstrap
from cali.actors import names
from cali.actors.shard_reader import ShardReader
from cali.config import Settings, with_secrets
from cali.service.leases import LeaseTaker

log = logging.getLogger(__name__)
WATCH_S = 0.5


@dataclass
class _Slot:
    shard_id: str
    actor: Any = None
    run_ref: Any = None
    # waiting (for a parent) | leasing (another worker holds it) | reading | shard_end
    state: str = "waiting"
    restarts: int = 0
    holder: str | None = None
    parents: tuple[str, ...] = field(default_factory=tuple)
    is_child: bool = False


@ray.remote(max_concurrency=4)
class StreamSupervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings  # readers get it as is: without secrets, they read their own
        resolved = with_secrets(settings, os.environ)
        self.stream = settings.kinesis.stream
        self.source = bootstrap.kinesis_source(resolved)
        self.checkpoints = bootstrap.checkpoints(resolved)
        self.owner = bootstrap.worker_id(settings)
        self.taker = LeaseTaker(self.checkpoints, self.stream, self.owner, settings.pipeline.lease_ttl_s,
                                bootstrap.clock())
        self.slots: dict[str, _Slot] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.scans = 0
        self.last_scan_ok: float | None = None
        # Started with the actor: a supervisor restarted by Ray goes back to work by itself.
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_scan = 0.0
        # Leases held by another worker are looked at more often than the shard list changes, so an
        # expired one is taken about one lease time after its holder stopped renewing.
        every = min(self.settings.kinesis.rescan_interval_s, self.settings.pipeline.lease_ttl_s / 4)
        while not self._stop.is_set():
            if time.monotonic() >= next_scan:
                try:
                    self.reconcile()
                    self.last_scan_ok = time.time()
                except Exception as exc:  # Kinesis or the lease table down: keep the readers we have
                    log.warning("shard scan failed: %s", exc)
                next_scan = time.monotonic() + every
            try:
                self.watch()
            except Exception as exc:  # a failed watch pass must not end supervision
                log.warning("watch failed: %s", exc)
            self._stop.wait(WATCH_S)

    def reconcile(self) -> dict[str, str]:
        """ListShards; for shards whose parents have ended, take the lease and start a reader."""
        shards = self.source.list_shards()
        known = {s.shard_id for s in shards}
        with self._lock:
            self.scans += 1
            for s in shards:
                slot = self.slots.setdefault(s.shard_id, _Slot(s.shard_id))
                # A parent already trimmed from the stream cannot be read: treat it as ended.
                slot.parents = tuple(p for p in (s.parent_shard_id, s.adjacent_parent_shard_id) if p and p in known)
                if slot.state == "shard_end" or slot.actor is not None or self._stop.is_set():
                    continue
                lease = self.checkpoints.get_lease(self.stream, s.shard_id)
                if lease.ended:
                    slot.state = "shard_end"
                    continue
                if not all(self._ended(p) for p in slot.parents):
                    slot.state = "waiting"
                    continue
                taken = self.taker.try_take(s.shard_id)
                if taken is None:
                    slot.state, slot.holder = "leasing", self.taker.holder_of(s.shard_id)
                    continue
                # A child of a shard this pipeline read starts at its beginning (see ShardConsumer).
                slot.is_child = any(self._known(p) for p in (s.parent_shard_id, s.adjacent_parent_shard_id) if p)
                slot.holder = self.owner
                self._start(slot)
            return {sid: slot.state for sid, slot in self.slots.items()}

    def _ended(self, shard_id: str) -> bool:
        slot = self.slots.get(shard_id)
        if slot and slot.state == "shard_end":
            return True
        return self.checkpoints.is_shard_ended(self.stream, shard_id)

    def _known(self, shard_id: str) -> bool:
        lease = self.checkpoints.get_lease(self.stream, shard_id)
        return lease.ended or lease.checkpoint is not None

    def _start(self, slot: _Slot) -> None:
        r = self.settings.ray
        slot.actor = ShardReader.options(
            name=names.shard_reader(slot.shard_id), namespace=r.namespace, get_if_exists=True,
            num_cpus=r.reader_cpus, max_restarts=-1, max_task_retries=0,
        ).remote(self.settings, slot.shard_id, slot.is_child)
        slot.run_ref = slot.actor.run.remote()
        slot.state = "reading"
        log.info("started %s", names.shard_reader(slot.shard_id))

    def watch(self) -> None:
        """Notices finished or failed run() calls: SHARD_END frees children, a lost lease frees the slot,
        a death is replaced."""
        with self._lock:
            running = {s.run_ref: s for s in self.slots.values() if s.run_ref is not None}
            if not running:
                return
            done, _ = ray.wait(list(running), num_returns=len(running), timeout=0)
            for ref in done:
                slot = running[ref]
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    self._replace(slot, exc)
                    continue
                slot.run_ref = None
                if outcome in ("shard_end", "lease_lost"):
                    slot.state = "shard_end" if outcome == "shard_end" else "waiting"
                    with contextlib.suppress(Exception):
                        ray.kill(slot.actor, no_restart=True)
                    slot.actor = None
                    if outcome == "lease_lost":
                        log.warning("%s lost its lease; another worker reads %s now",
                                    names.shard_reader(slot.shard_id), slot.shard_id)
        # children whose parents just ended start on the next pass without waiting for a rescan
        if any(s.state == "waiting" for s in self.slots.values()) and not self._stop.is_set():
            try:
                self.reconcile()
            except Exception as exc:
                log.warning("shard scan failed: %s", exc)

    def _replace(self, slot: _Slot, exc: Exception) -> None:
        slot.restarts += 1
        log.warning("reader %s failed (%s); replacing it", slot.shard_id, type(exc).__name__)
        try:  # Ray may already have restarted it (max_restarts): then only run() needs calling again
            ray.get(slot.actor.ping.remote(), timeout=10)
            slot.run_ref = slot.actor.run.remote()
            return
        except ray.exceptions.RayError:
            pass
        with contextlib.suppress(Exception):
            ray.kill(slot.actor, no_restart=True)
        slot.actor = None
        # The name is released once the old actor is dead; the new one takes our lease again and resumes
        # from the checkpoint.
        for _ in range(50):
            try:
                self._start(slot)
                return
            except ValueError:
                time.sleep(0.1)
        slot.state = "waiting"

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            slots = list(self.slots.values())
        refs = {s.shard_id: s.actor.status.remote() for s in slots if s.actor is not None}
        out = []
        for s in slots:
            row: dict[str, Any] = {"shard_id": s.shard_id, "state": s.state, "restarts": s.restarts,
                                   "parents": list(s.parents), "holder": s.holder}
            if s.shard_id in refs:
                try:
                    row.update(ray.get(refs[s.shard_id], timeout=5))
                    row["state"] = row.get("state", s.state)
                except ray.exceptions.RayError as exc:
                    row["error"] = type(exc).__name__
            elif s.state == "shard_end":
                row["last_checkpoint"] = self.checkpoints.get_checkpoint(self.stream, s.shard_id)
            out.append(row)
        return sorted(out, key=lambda r: r["shard_id"])

    def health(self) -> dict[str, Any]:
        """For liveness: when the shard list was last read, and whether the supervision loop runs."""
        return {"owner": self.owner, "last_scan_ok": self.last_scan_ok, "loop_alive": self._thread.is_alive(),
                "scans": self.scans}

    def stop(self) -> None:
        """Stops readers (each writes what it buffered, checkpoints, hands its lease over), then itself."""
        self._stop.set()
        self._thread.join(timeout=30)
        with self._lock:
            slots = [s for s in self.slots.values() if s.actor is not None]
        for s in slots:
            s.actor.stop.remote()
        for s in slots:
            if s.run_ref is not None:
                with contextlib.suppress(ray.exceptions.RayError):
                    ray.get(s.run_ref, timeout=60)

    def scan_count(self) -> int:
        return self.scans
