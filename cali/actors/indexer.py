"""Indexer: a reader's index feed in its own process, so indexing never takes the reader's CPU or GIL."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import ray

from cali import bootstrap
from cali.config import Settings, with_secrets

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 8  # batches sent and not yet taken by the indexer; past it the reader drops (S3 has them)


@ray.remote(max_concurrency=2)
class Indexer:
    """Owned by its ShardReader (not detached): it lives and dies with it."""

    def __init__(self, settings: Settings, shard_id: str) -> None:
        settings = with_secrets(settings, os.environ)
        self.feed = bootstrap.log_feed(settings, shard_id, dead_letters=bootstrap.archive(settings))

    def add(self, rows: list[bytes]) -> int:
        self.feed(rows)
        return len(rows)

    def stats(self) -> dict[str, Any]:
        return dict(vars(self.feed.stats))

    def stop(self, timeout_s: float = 10.0) -> None:
        self.feed.stop(timeout_s=timeout_s)


class RemoteFeed:
    """The flusher's index hook when the feed runs in an Indexer actor: one remote call per archived batch,
    never a wait. Too many batches in flight (the indexer is behind): the batch is dropped and counted."""

    def __init__(self, handle: Any, max_in_flight: int = MAX_IN_FLIGHT) -> None:
        self.handle, self.max_in_flight = handle, max_in_flight
        self.dropped = 0
        self._in_flight: list[Any] = []
        self._last: dict[str, Any] = {}
        self._asked: Any = None  # the stats request in flight

    def __call__(self, rows: Sequence[bytes]) -> None:
        self._prune()
        if len(self._in_flight) >= self.max_in_flight:
            self.dropped += len(rows)
            return
        self._in_flight.append(self.handle.add.remote(list(rows)))

    def stats(self) -> dict[str, Any]:
        """The indexer's latest counts, plus what was dropped here. Never waits: it takes the answer to the
        previous request if it has come, and asks again (a busy indexer must not slow the reader's status)."""
        if self._asked is not None:
            ready, _ = ray.wait([self._asked], timeout=0)
            if ready:
                try:
                    self._last = ray.get(ready[0])
                except Exception as exc:  # restarting: keep the last known counts
                    log.debug("indexer stats: %s", exc)
                self._asked = None
        if self._asked is None:
            self._asked = self.handle.stats.remote()
        out = dict(self._last)
        out["dropped"] = out.get("dropped", 0) + self.dropped
        self._prune()  # after the last batch no call prunes: the count must still reach 0
        out["queued"] = out.get("queued", 0) + len(self._in_flight)
        return out

    def _prune(self) -> None:
        if self._in_flight:
            _, self._in_flight = ray.wait(self._in_flight, num_returns=len(self._in_flight), timeout=0)

    def stop(self, timeout_s: float = 10.0) -> None:
        try:
            ray.get(self._in_flight, timeout=timeout_s)
            ray.get(self.handle.stop.remote(timeout_s), timeout=timeout_s + 5)
        except Exception as exc:  # what was not indexed is still archived
            log.warning("indexer did not finish: %s", exc)
