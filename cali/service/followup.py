"""After a FIRST alert is delivered: ask for its analysis, then queue the follow-up message.

The alert never waits for this: analysis runs in a small thread pool, bounded by a timeout and cached
per fingerprint (a repeat does not ask again). The daily budget of LLM calls is not kept here: the
Analyzer deployment enforces it where the LLM is called, in the state store, so this path and
`POST /analyze` spend from the same budget and a restart does not refill it. Any failure is logged and
counted; the alert it follows is already out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from cali.analysis.budget import VerdictCache
from cali.core.alerts import Alert, AlertKind, analysis_alert
from cali.core.ports import Clock, Outbox

log = logging.getLogger(__name__)


class AnalysisClient(Protocol):
    def analyze(self, record: dict[str, Any], *, fingerprint: str, use_llm: bool, timeout_s: float) -> dict[str, Any]:
        """Returns the Analysis JSON for one LogRecord JSON; raises on failure or timeout."""
        ...


@dataclass
class FollowupStats:
    requested: int = 0
    posted: int = 0
    cached: int = 0
    llm_calls: int = 0  # analyses the LLM took part in (the Analyzer decides, within its budget)
    failed: int = 0
    last_error: str | None = None


def record_of(alert: Alert) -> dict[str, Any]:
    """The LogRecord JSON an alert stands for (message and the whole capped stack)."""
    return {"timestamp": (alert.first_seen or alert.created_at).isoformat(), "level": alert.level.value,
            "service": alert.service, "message": alert.message, "stack": alert.stack, "host": alert.host,
            "trace_id": alert.trace_id, "env": alert.env}


class AnalysisFollowup:
    def __init__(self, client: AnalysisClient, outbox: Outbox, clock: Clock, *, on_queued: Callable[[], None],
                 use_llm: bool = True, timeout_s: float = 20.0, cache_ttl_s: float = 3600.0, workers: int = 2) -> None:
        self.client, self.outbox, self.clock = client, outbox, clock
        self.on_queued = on_queued
        self.use_llm = use_llm
        self.timeout_s = timeout_s
        self.cache: VerdictCache[dict[str, Any]] = VerdictCache(clock, ttl_s=cache_ttl_s)
        self.stats = FollowupStats()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="analysis")

    def on_delivered(self, alert: Alert) -> None:
        if alert.kind is AlertKind.FIRST:
            self.stats.requested += 1
            self._pool.submit(self._run, alert)

    def _run(self, alert: Alert) -> None:
        try:
            analysis = self.cache.get(alert.fingerprint)
            if analysis is not None:
                self.stats.cached += 1
            else:
                analysis = self.client.analyze(record_of(alert), fingerprint=alert.fingerprint,
                                               use_llm=self.use_llm, timeout_s=self.timeout_s)
                self.stats.llm_calls += analysis.get("mode") == "llm"
                self.cache.put(alert.fingerprint, analysis)
            self.outbox.enqueue([analysis_alert(alert, analysis, self.clock.now())])
            self.stats.posted += 1
            self.on_queued()
        except Exception as exc:  # the alert is already delivered; an analysis is a bonus, never a blocker
            self.stats.failed += 1
            self.stats.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            log.warning("analysis of %s failed: %s", alert.alert_id, self.stats.last_error)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
