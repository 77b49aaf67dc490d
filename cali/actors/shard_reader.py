"""ShardReader: one per open Kinesis shard; the hot path."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import ray

from cali import bootstrap
from cali.actors import names
from cali.config import Settings
from cali.core.fingerprint import route
from cali.core.incidents import Candidate
from cali.service.shard_consumer import ConsumerOptions, ShardConsumer

log = logging.getLogger(__name__)


@ray.remote(max_concurrency=4)  # run() loops in one thread; status()/stop() answer from others
class ShardReader:
    def __init__(self, settings: Settings, shard_id: str) -> None:
        self.settings, self.shard_id = settings, shard_id
        self._stop = threading.Event()
        self._trackers: list[Any] | None = None
        k, a = settings.kinesis, settings.archive
        self.consumer = ShardConsumer(
            stream=k.stream, shard_id=shard_id, owner=names.shard_reader(shard_id),
            source=bootstrap.kinesis_source(settings), archive=bootstrap.archive(settings),
            checkpoints=bootstrap.checkpoints(settings), state=bootstrap.state_store(settings),
            send=self._send, clock=bootstrap.clock(), alert_filter=bootstrap.alert_filter(settings),
            options=ConsumerOptions(start=k.start, start_timestamp=k.start_timestamp,
                                    poll_interval_s=k.poll_interval_s, max_records=k.max_records,
                                    flush_interval_s=a.flush_interval_s, flush_max_records=a.flush_max_records))

    def _tracker_handles(self) -> list[Any]:
        if self._trackers is None:
            ns = self.settings.ray.namespace
            self._trackers = [ray.get_actor(names.tracker(i), namespace=ns)
                              for i in range(self.settings.alerting.trackers)]
        return self._trackers

    def _send(self, candidates: list[Candidate]) -> None:
        """Routes by fingerprint and waits for every tracker's ack; retries, never drops."""
        delay = 0.1
        while True:
            trackers = self._tracker_handles()
            batches: dict[int, list[Candidate]] = {}
            for c in candidates:
                batches.setdefault(route(c.fingerprint, len(trackers)), []).append(c)
            try:
                ray.get([trackers[i].ingest.remote(b) for i, b in batches.items()], timeout=30)
                return
            except (ray.exceptions.RayError, ValueError) as exc:
                if self._stop.is_set():
                    raise
                log.warning("tracker ack failed for %s (%s); retrying in %.1fs", self.shard_id, exc, delay)
                self._trackers = None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def run(self) -> str:
        return self.consumer.run(self._stop)

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> dict[str, Any]:
        return self.consumer.status.to_dict()

    def ping(self) -> str:
        return self.shard_id
