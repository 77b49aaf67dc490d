"""IncidentTracker: owns one partition of services (by lease), groups and throttles, fills the outbox."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import ray

from cali import bootstrap
from cali.actors import names
from cali.config import Settings, with_secrets
from cali.core.incidents import Candidate, IncidentBook
from cali.core.ports import Unavailable
from cali.metrics import Recorder, record_tracker
from cali.service.leases import LeaseKeeper
from cali.service.tracker import TrackerService
from cali.state import StateBackendError

TICK_S = 1.0
log = logging.getLogger(__name__)


@ray.remote(max_concurrency=4)
class IncidentTracker:
    """Only the holder of the partition's lease counts its services: with two clusters on one stream (an
    upgrade), the second cluster's tracker waits until the first hands the lease over or lets it expire."""

    def __init__(self, settings: Settings, index: int) -> None:
        settings = with_secrets(settings, os.environ)
        self.settings, self.index = settings, index
        self.stream = settings.kinesis.stream
        self.partition = names.tracker_partition(index)
        clock = bootstrap.clock()
        book = IncidentBook(clock, groups=bootstrap.service_groups(settings), window_s=settings.alerting.window_s)
        self.service = TrackerService(book, bootstrap.state_store(settings), bootstrap.outbox(settings),
                                      scope=f"tracker/{self.stream}/{index}", on_alerts=self._nudge)
        self.keeper = LeaseKeeper(bootstrap.checkpoints(settings), self.stream, self.partition,
                                  bootstrap.worker_id(settings), settings.pipeline.lease_ttl_s, clock,
                                  on_acquired=self._restore)
        self.restored = 0
        self._alerter: Any = None
        self._stop = threading.Event()
        threading.Thread(target=self.keeper.run, args=(self._stop,), name="tracker-lease", daemon=True).start()
        threading.Thread(target=self._ticker, name="tracker-tick", daemon=True).start()

    def _restore(self) -> None:
        # Whatever another cluster counted while it held the partition is in the store: start from there.
        self.restored = self.service.restore()
        log.info("tracker %d holds %s (%d state items)", self.index, self.partition, self.restored)

    def _nudge(self) -> None:
        try:
            if self._alerter is None:
                self._alerter = ray.get_actor(names.ALERTER, namespace=self.settings.ray.namespace)
            self._alerter.nudge.remote()
        except ValueError:  # no alerter yet: it drains the outbox on start
            self._alerter = None

    def _ticker(self) -> None:
        rec = Recorder()
        while not self._stop.wait(TICK_S):
            try:
                record_tracker(rec, self.index, self.service.stats())
            except Exception as exc:  # metrics are best effort
                log.debug("metrics: %s", exc)
            if not self.keeper.held.is_set():
                continue
            try:
                self.service.tick()
            except Exception as exc:  # the state is rolled back; the next tick tries again
                log.warning("tracker %d tick failed: %s", self.index, exc)

    def ingest(self, candidates: list[Candidate]) -> list[str]:
        if not self.keeper.held.is_set():
            raise Unavailable(f"tracker {self.index} does not hold {self.partition} yet (held by "
                              f"{self.keeper.holder_of()}; {self.keeper.last_error or 'waiting'})")
        try:
            return self.service.ingest(candidates)
        except StateBackendError as exc:
            if exc.retryable:
                raise Unavailable(str(exc)) from exc
            raise

    def ready(self) -> bool:
        return self.keeper.held.is_set()

    def stats(self) -> dict[str, Any]:
        return {"index": self.index, "restored": self.restored, "ready": self.keeper.held.is_set(),
                "owner": self.keeper.owner, **self.service.stats()}

    def stop(self) -> None:
        """Stops ticking and hands the partition over (its state is committed after every batch)."""
        self._stop.set()
        self.keeper.release()
