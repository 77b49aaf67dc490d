"""ShardReader: one per leased Kinesis shard; the hot path."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import ray

from cali import bootstrap
from cali.actors import names
from cali.config import Settings, with_secrets
from cali.core.fingerprint import route
from cali.core.incidents import Candidate
from cali.core.ports import Rejected, Unavailable
from cali.metrics import Recorder, record_reader
from cali.service.leases import LeaseHolder
from cali.service.shard_consumer import ConsumerOptions, ShardConsumer, tune_gc_for_reading

log = logging.getLogger(__name__)
ACK_TIMEOUT_S = 30.0
METRICS_EVERY_S = 2.0


@ray.remote(max_concurrency=4)  # run() loops in one thread; status()/stop() answer from others
class ShardReader:
    def __init__(self, settings: Settings, shard_id: str, is_child: bool = False) -> None:
        settings = with_secrets(settings, os.environ)
        self.settings, self.shard_id = settings, shard_id
        self.owner = bootstrap.worker_id(settings)
        self._stop = threading.Event()
        self._trackers: list[Any] | None = None
        k, a, p = settings.kinesis, settings.archive, settings.pipeline
        clock = bootstrap.clock()
        self.checkpoints = bootstrap.checkpoints(settings)
        archive = bootstrap.archive(settings)
        self.index_feed = self._indexer(settings, shard_id)
        self.consumer = ShardConsumer(
            stream=k.stream, shard_id=shard_id, owner=self.owner, source=bootstrap.kinesis_source(settings),
            archive=archive, checkpoints=self.checkpoints, index=self.index_feed,
            state=bootstrap.state_store(settings), send=self._send, clock=clock,
            alert_filter=bootstrap.alert_filter(settings), is_child=is_child,
            options=ConsumerOptions(start=k.start, start_timestamp=k.start_timestamp,
                                    poll_interval_s=k.poll_interval_s, max_records=k.max_records,
                                    flush_interval_s=a.flush_interval_s, flush_max_records=a.flush_max_records,
                                    max_pending_bytes=int(a.max_pending_mb * 1024 * 1024),
                                    send_give_up_s=settings.alerting.send_give_up_s))
        self.consumer.status.owner = self.owner
        # The supervisor took the lease for this worker; a reader restarted by Ray takes it again here,
        # with whatever counter it has now (it is still ours unless another worker took it meanwhile).
        lease = self.checkpoints.get_lease(k.stream, shard_id)
        taken = self.checkpoints.take_lease(k.stream, shard_id, self.owner, lease.counter) \
            if lease.owner in (None, self.owner) else None
        self.lease = LeaseHolder(self.checkpoints, k.stream, shard_id, self.owner, taken.counter if taken else 0,
                                 p.lease_ttl_s, clock)
        if taken is None:
            self.lease.lost.set()
        self.consumer.lost = self.lease.lost
        tune_gc_for_reading()  # this actor's process reads one shard and nothing else

    @staticmethod
    def _indexer(settings: Settings, shard_id: str) -> Any:
        """The index feed runs in an Indexer actor owned by this reader: the hot path only sends it batches."""
        if settings.index.backend == "off":
            return None
        from cali.actors.indexer import Indexer, RemoteFeed
        from cali.config import without_secrets

        handle = Indexer.options(num_cpus=settings.ray.indexer_cpus, max_restarts=-1, max_task_retries=0) \
            .remote(without_secrets(settings), shard_id)
        return RemoteFeed(handle)

    def _tracker_handles(self) -> list[Any]:
        if self._trackers is None:
            ns = self.settings.ray.namespace
            self._trackers = [ray.get_actor(names.tracker(i), namespace=ns)
                              for i in range(self.settings.alerting.trackers)]
        return self._trackers

    def _send(self, candidates: list[Candidate]) -> list[Any]:
        """Routes by service (the tracker that owns it), waits for every ack; keys in candidate order."""
        try:
            trackers = self._tracker_handles()
        except ValueError as exc:  # a tracker is not registered (yet): Ray restarts it
            self._trackers = None
            raise Unavailable(f"tracker not found: {exc}") from exc
        slots: dict[int, list[int]] = {}
        for i, c in enumerate(candidates):
            slots.setdefault(route(c.record.service, len(trackers)), []).append(i)
        refs = {t: trackers[t].ingest.remote([candidates[i] for i in idx]) for t, idx in slots.items()}
        keys: list[Any] = [None] * len(candidates)
        try:
            for t, ref in refs.items():
                for i, key in zip(slots[t], ray.get(ref, timeout=ACK_TIMEOUT_S), strict=True):
                    keys[i] = key
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Unavailable):
                raise Unavailable(str(cause)) from exc
            raise Rejected(f"tracker failed on this batch: {type(cause).__name__}: {cause}") from exc
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError, ray.exceptions.RayError) as exc:
            self._trackers = None
            raise Unavailable(f"tracker did not answer: {type(exc).__name__}: {str(exc)[:200]}") from exc
        return keys

    def run(self) -> str:
        if self.lease.lost.is_set():
            return "lease_lost"
        keeper = threading.Thread(target=self.lease.keep, args=(self._stop,), name="lease", daemon=True)
        keeper.start()
        threading.Thread(target=self._metrics, name="metrics", daemon=True).start()
        outcome = self.consumer.run(self._stop)
        if self.index_feed is not None:
            self.index_feed.stop(timeout_s=10)  # what was archived gets indexed before the reader goes
        if outcome in ("stopped", "shard_end"):
            self._stop.set()
            keeper.join(timeout=5)
            self.lease.release()  # graceful hand-off: the next worker need not wait for expiry
        return outcome

    def _metrics(self) -> None:
        """Ray metrics from the status the reader keeps anyway: nothing is added to the read loop."""
        rec = Recorder()
        while True:
            stopping = self._stop.wait(METRICS_EVERY_S)
            try:
                record_reader(rec, self.status())
            except Exception as exc:  # metrics are best effort; the reader goes on
                log.debug("metrics: %s", exc)
            if stopping:
                return

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> dict[str, Any]:
        out = self.consumer.status.to_dict()
        if self.index_feed is not None:
            out["index"] = self.index_feed.stats()
        return out

    def ping(self) -> str:
        return self.shard_id
