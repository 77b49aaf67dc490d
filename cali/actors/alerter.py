"""Alerter: drains the durable outbox to Slack, in order, once."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import ray

from cali import bootstrap
from cali.actors import names
from cali.config import Settings, with_secrets
from cali.metrics import Recorder, TimedNotifier
from cali.notify.delivery import DeliveryLoop
from cali.service.leases import LeaseKeeper

log = logging.getLogger(__name__)
IDLE_S = 0.5
GAUGES_EVERY_S = 5.0


@ray.remote(max_concurrency=4)
class Alerter:
    def __init__(self, settings: Settings) -> None:
        settings = with_secrets(settings, os.environ)  # secrets come from this process's environment
        self._wake = threading.Event()
        self._stop = threading.Event()
        outbox, clock = bootstrap.outbox(settings), bootstrap.clock()
        self.outbox, self.clock, self.metrics = outbox, clock, Recorder()
        self._gauges_at = 0.0
        self.followup = bootstrap.analysis_followup(settings, outbox, clock, on_queued=self.nudge)
        # Each delivered alert (FIRST, SUMMARY, ANALYSIS) also goes into its incident in the index.
        self.incidents = bootstrap.incident_feed(settings)
        hooks = [h for h in (self.followup.on_delivered if self.followup else None, self.incidents) if h]
        self.loop = DeliveryLoop(outbox, TimedNotifier(bootstrap.notifier(settings), self.metrics, clock), clock,
                                 on_delivered=_each(hooks) if hooks else None)
        # One drain per outbox, across clusters too (an upgrade runs two): the drain holds a lease.
        self.keeper = LeaseKeeper(bootstrap.checkpoints(settings), settings.kinesis.stream, names.ALERTER_LEASE,
                                  bootstrap.worker_id(settings), settings.pipeline.lease_ttl_s, clock,
                                  on_acquired=self.nudge)
        # The loops start with the actor, so a restart by Ray (max_restarts) resumes delivery by itself,
        # and a second start_pipeline cannot run a second, concurrent drain.
        threading.Thread(target=self.keeper.run, args=(self._stop,), name="alerter-lease", daemon=True).start()
        self._thread = threading.Thread(target=self._run, name="alerter", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        backoff = IDLE_S
        while not self._stop.is_set():
            self._wake.clear()
            self._gauges()
            if not self.keeper.held.is_set():
                self._wake.wait(IDLE_S)
                continue
            try:
                delivered = self.loop.drain(100)
                backoff = IDLE_S
            except Exception as exc:  # the outbox keeps the alert; try again later
                log.warning("alert delivery failed: %s", exc)
                delivered, backoff = 0, min(backoff * 2, 30.0)
            if not delivered:
                self._wake.wait(backoff)

    def _gauges(self) -> None:
        """Outbox depth, every few seconds (the count is a query). The LLM budget's gauge is the Analyzer's."""
        now = self.clock.monotonic()
        if now - self._gauges_at < GAUGES_EVERY_S:
            return
        self._gauges_at = now
        try:
            counts = getattr(self.outbox, "counts", None)
            depth = counts()["pending"] if counts else len(self.outbox.pending(1000))
            self.metrics.set("cali_outbox_depth", depth)
        except Exception as exc:  # metrics are best effort
            log.debug("metrics: %s", exc)

    def stats(self) -> dict[str, Any]:
        s = self.loop.stats
        out = {"delivered": s.delivered, "dead": s.dead, "retryable_failures": s.retryable_failures,
               "last_error": s.last_error, "draining": self.keeper.held.is_set()}
        if self.followup is not None:
            out["analysis"] = dict(vars(self.followup.stats))
        if self.incidents is not None:
            out["index"] = dict(vars(self.incidents.stats))
        return out

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=30)
        self.keeper.release()
        if self.followup is not None:
            self.followup.close()
        if self.incidents is not None:
            self.incidents.stop(timeout_s=10)


def _each(hooks: list[Any]) -> Any:
    def call(alert: Any) -> None:
        for hook in hooks:
            try:
                hook(alert)
            except Exception as exc:  # one hook failing must not keep the others from running
                log.warning("after-delivery hook %s failed for %s: %s", hook, alert.alert_id, exc)
    return call
