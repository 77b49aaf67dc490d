"""StreamSupervisor: one ShardReader per readable shard, parents before children, dead ones replaced."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import ray

from cali import bootstrap
from cali.actors import names
from cali.actors.shard_reader import ShardReader
from cali.config import Settings

log = logging.getLogger(__name__)
WATCH_S = 0.5


@dataclass
class _Slot:
    shard_id: str
    actor: Any = None
    run_ref: Any = None
    state: str = "waiting"  # waiting (for a parent) | reading | shard_end
    restarts: int = 0
    parents: tuple[str, ...] = field(default_factory=tuple)


@ray.remote(max_concurrency=4)
class StreamSupervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.source = bootstrap.kinesis_source(settings)
        self.checkpoints = bootstrap.checkpoints(settings)
        self.slots: dict[str, _Slot] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.scans = 0
        # Started with the actor: a supervisor restarted by Ray goes back to work by itself.
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_scan = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_scan:
                try:
                    self.reconcile()
                except Exception as exc:  # Kinesis down: keep the readers we have, try again
                    log.warning("shard scan failed: %s", exc)
                next_scan = time.monotonic() + self.settings.kinesis.rescan_interval_s
            try:
                self.watch()
            except Exception as exc:  # a failed watch pass must not end supervision
                log.warning("watch failed: %s", exc)
            self._stop.wait(WATCH_S)

    def reconcile(self) -> dict[str, str]:
        """ListShards, then start readers for shards whose parents have reached SHARD_END."""
        stream = self.settings.kinesis.stream
        shards = self.source.list_shards()
        known = {s.shard_id for s in shards}
        with self._lock:
            self.scans += 1
            for s in shards:
                slot = self.slots.setdefault(s.shard_id, _Slot(s.shard_id))
                # A parent already trimmed from the stream cannot be read: treat it as ended.
                slot.parents = tuple(p for p in (s.parent_shard_id, s.adjacent_parent_shard_id) if p and p in known)
                if slot.state == "shard_end" or slot.actor is not None:
                    continue
                if self.checkpoints.is_shard_ended(stream, s.shard_id):
                    slot.state = "shard_end"
                    continue
                if all(self._ended(p) for p in slot.parents):
                    self._start(slot)
            return {sid: slot.state for sid, slot in self.slots.items()}

    def _ended(self, shard_id: str) -> bool:
        slot = self.slots.get(shard_id)
        if slot and slot.state == "shard_end":
            return True
        return self.checkpoints.is_shard_ended(self.settings.kinesis.stream, shard_id)

    def _start(self, slot: _Slot) -> None:
        r = self.settings.ray
        slot.actor = ShardReader.options(
            name=names.shard_reader(slot.shard_id), namespace=r.namespace, get_if_exists=True,
            num_cpus=r.reader_cpus, max_restarts=-1, max_task_retries=0,
        ).remote(self.settings, slot.shard_id)
        slot.run_ref = slot.actor.run.remote()
        slot.state = "reading"
        log.info("started %s", names.shard_reader(slot.shard_id))

    def watch(self) -> None:
        """Notices finished or failed run() calls: SHARD_END frees children, a death is replaced."""
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
                if outcome == "shard_end":
                    slot.state, slot.run_ref = "shard_end", None
                    ray.kill(slot.actor, no_restart=True)
                    slot.actor = None
                else:
                    slot.run_ref = None
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
        # The name is released once the old actor is dead; the new one resumes from the checkpoint.
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
                                   "parents": list(s.parents)}
            if s.shard_id in refs:
                try:
                    row.update(ray.get(refs[s.shard_id], timeout=5))
                    row["state"] = row.get("state", s.state)
                except ray.exceptions.RayError as exc:
                    row["error"] = type(exc).__name__
            elif s.state == "shard_end":
                row["last_checkpoint"] = self.checkpoints.get_checkpoint(self.settings.kinesis.stream, s.shard_id)
            out.append(row)
        return sorted(out, key=lambda r: r["shard_id"])

    def stop(self) -> None:
        """Stops readers (each flushes its buffer and checkpoints) and then itself."""
        self._stop.set()
        self._thread.join(timeout=30)
        with self._lock:
            slots = [s for s in self.slots.values() if s.actor is not None]
        for s in slots:
            s.actor.stop.remote()
        for s in slots:
            if s.run_ref is not None:
                with contextlib.suppress(ray.exceptions.RayError):
                    ray.get(s.run_ref, timeout=30)

    def scan_count(self) -> int:
        return self.scans
