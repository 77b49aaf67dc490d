"""IncidentTracker: groups alert-worthy records by incident, throttles, fills the outbox."""

from __future__ import annotations

import logging
import threading
from typing import Any

import ray

from cali import bootstrap
from cali.actors import names
from cali.config import Settings
from cali.core.incidents import Candidate, IncidentBook
from cali.service.tracker import TrackerService

TICK_S = 1.0
log = logging.getLogger(__name__)


@ray.remote(max_concurrency=4)
class IncidentTracker:
    def __init__(self, settings: Settings, index: int) -> None:
        self.settings, self.index = settings, index
        n = settings.alerting.trackers
        book = IncidentBook(bootstrap.clock(), grouper=bootstrap.grouper(settings, index),
                            window_s=settings.alerting.window_s)
        self.service = TrackerService(book, bootstrap.state_store(settings), bootstrap.outbox(settings),
                                      state_key=f"tracker/{index}-of-{n}", on_alerts=self._nudge)
        self.restored = self.service.restore()
        self._alerter: Any = None
        self._stop = threading.Event()
        threading.Thread(target=self._ticker, name="tracker-tick", daemon=True).start()

    def _nudge(self) -> None:
        try:
            if self._alerter is None:
                self._alerter = ray.get_actor(names.ALERTER, namespace=self.settings.ray.namespace)
            self._alerter.nudge.remote()
        except ValueError:  # no alerter yet: it drains the outbox on start
            self._alerter = None

    def _ticker(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.service.tick()
            except Exception as exc:  # the state is rolled back; the next tick tries again
                log.warning("tracker %d tick failed: %s", self.index, exc)

    def ingest(self, candidates: list[Candidate]) -> int:
        return self.service.ingest(candidates)

    def stats(self) -> dict[str, Any]:
        return {"index": self.index, "restored": self.restored, **self.service.stats()}

    def stop(self) -> None:
        self._stop.set()
