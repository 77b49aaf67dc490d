"""Alerter: drains the durable outbox to Slack, in order, once."""

from __future__ import annotations

import logging
import threading
from typing import Any

import ray

from cali import bootstrap
from cali.config import Settings
from cali.notify.delivery import DeliveryLoop

log = logging.getLogger(__name__)
IDLE_S = 0.5


@ray.remote(max_concurrency=4)
class Alerter:
    def __init__(self, settings: Settings) -> None:
        self.loop = DeliveryLoop(bootstrap.outbox(settings), bootstrap.notifier(settings), bootstrap.clock())
        self._wake = threading.Event()
        self._stop = threading.Event()

    def nudge(self) -> None:
        self._wake.set()

    def run(self) -> str:
        backoff = IDLE_S
        while not self._stop.is_set():
            self._wake.clear()
            try:
                delivered = self.loop.drain(100)
                backoff = IDLE_S
            except Exception as exc:  # the outbox keeps the alert; try again later
                log.warning("alert delivery failed: %s", exc)
                delivered, backoff = 0, min(backoff * 2, 30.0)
            if not delivered:
                self._wake.wait(backoff)
        return "stopped"

    def stats(self) -> dict[str, Any]:
        s = self.loop.stats
        return {"delivered": s.delivered, "dead": s.dead, "retryable_failures": s.retryable_failures,
                "last_error": s.last_error}

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
