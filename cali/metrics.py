"""CALI's metrics, the Ray way: ray.util.metrics in the actors and Serve deployments, exported by Ray to
Prometheus (`ray_<name>`, counters with `_total`, histograms with `_bucket`/`_sum`/`_count`).

The catalog below is the one list: the actors record into it, the Grafana dashboards and alert rules
are generated from it (deploy/grafana), and a test checks each name is really served after a run.
Counters the core already keeps (ReaderStatus, the tracker's counts) are synced as deltas, so the hot
path gains no metric calls.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

LATENCY_BUCKETS_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # counter | gauge | histogram
    description: str
    tags: tuple[str, ...] = ()

    @property
    def prometheus(self) -> str:
        """The series name Ray's exporter serves (histograms: the _bucket series)."""
        suffix = {"counter": "_total", "gauge": "", "histogram": "_bucket"}[self.kind]
        return f"ray_{self.name}{suffix}"


CATALOG: dict[str, Metric] = {m.name: m for m in (
    Metric("cali_records_in", "counter", "Records read from Kinesis, per shard.", ("shard",)),
    Metric("cali_records_archived", "counter", "Valid records written to the S3 archive, per shard.", ("shard",)),
    Metric("cali_records_dead_lettered", "counter", "Records sent to the DLQ (invalid input or set aside), per shard.",
           ("shard",)),
    Metric("cali_millis_behind_latest", "gauge", "Kinesis MillisBehindLatest of the shard's last GetRecords.",
           ("shard",)),
    Metric("cali_pending_bytes", "gauge", "Bytes read but not yet archived, per shard.", ("shard",)),
    Metric("cali_index_documents", "counter", "Log documents per index outcome (indexed, rejected, dropped).",
           ("shard", "outcome")),
    Metric("cali_alerts_sent", "counter", "Alerts a tracker put in the outbox.", ("tracker",)),
    Metric("cali_alerts_suppressed", "counter", "Repeats a tracker counted and did not send.", ("tracker",)),
    Metric("cali_slack_delivery_seconds", "histogram", "Time of one Slack delivery (with the adapter's retries).",
           ("kind",)),
    Metric("cali_slack_delivery_failures", "counter", "Slack deliveries that failed (retryable or dead-lettered).",
           ("kind", "permanent")),
    Metric("cali_outbox_depth", "gauge", "Alerts waiting in the outbox."),
    Metric("cali_llm_calls", "counter", "LLM calls of the analyzer, per outcome.", ("outcome",)),
    Metric("cali_llm_latency_seconds", "histogram", "Time of one LLM call.", ()),
    Metric("cali_llm_tokens", "counter", "Tokens the LLM reported using, per kind (prompt, completion).", ("kind",)),
    Metric("cali_llm_budget_left", "gauge", "LLM calls left in today's budget (CALI_ANALYSIS__DAILY_LLM_BUDGET)."),
    Metric("cali_retrieval_seconds", "histogram", "Knowledge-base search time (embedding + hybrid search).", ()),
    Metric("cali_console_request_seconds", "histogram", "Console API request time, per route.", ("route",)),
)}


class Recorder:
    """Creates the ray.util.metrics objects on first use (never at import) and keeps counter baselines."""

    def __init__(self) -> None:
        self._objects: dict[str, Any] = {}
        self._last: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._lock = threading.Lock()

    def _get(self, name: str) -> Any:
        obj = self._objects.get(name)
        if obj is None:
            from ray.util import metrics as rm

            m = CATALOG[name]
            if m.kind == "counter":
                obj = rm.Counter(m.name, description=m.description, tag_keys=m.tags)
            elif m.kind == "gauge":
                obj = rm.Gauge(m.name, description=m.description, tag_keys=m.tags)
            else:
                obj = rm.Histogram(m.name, description=m.description, boundaries=LATENCY_BUCKETS_S, tag_keys=m.tags)
            self._objects[name] = obj
        return obj

    def inc(self, name: str, value: float = 1.0, **tags: str) -> None:
        if value > 0:
            self._get(name).inc(value, tags=tags or None)

    def set(self, name: str, value: float, **tags: str) -> None:
        self._get(name).set(value, tags=tags or None)

    def observe(self, name: str, seconds: float, **tags: str) -> None:
        self._get(name).observe(seconds, tags=tags or None)

    def total(self, name: str, value: float, **tags: str) -> None:
        """Records a running total the code already keeps: the counter gets what it grew by since last time."""
        key = (name, tuple(sorted(tags.items())))
        with self._lock:
            before = self._last.get(key, 0.0)
            self._last[key] = value
        if value > before:
            self.inc(name, value - before, **tags)


def record_reader(rec: Recorder, status: dict[str, Any]) -> None:
    """A ShardReader's status (ReaderStatus plus its index feed) as metrics."""
    shard = status["shard_id"]
    rec.total("cali_records_in", status.get("records", 0), shard=shard)
    rec.total("cali_records_archived", status.get("archived", 0), shard=shard)
    rec.total("cali_records_dead_lettered", status.get("dead", 0) + status.get("set_aside", 0), shard=shard)
    if status.get("millis_behind_latest") is not None:
        rec.set("cali_millis_behind_latest", status["millis_behind_latest"], shard=shard)
    rec.set("cali_pending_bytes", status.get("pending_bytes", 0), shard=shard)
    index = status.get("index") or {}
    for outcome in ("indexed", "rejected", "dropped"):
        rec.total("cali_index_documents", index.get(outcome, 0), shard=shard, outcome=outcome)


def record_tracker(rec: Recorder, index: int, stats: dict[str, Any]) -> None:
    rec.total("cali_alerts_sent", stats.get("alerts_sent", 0), tracker=str(index))
    rec.total("cali_alerts_suppressed", stats.get("alerts_suppressed", 0), tracker=str(index))


class TimedNotifier:
    """Wraps the Slack notifier: each send's time and failures go to the metrics; the rest passes through."""

    def __init__(self, inner: Any, rec: Recorder, clock: Any) -> None:
        self.inner, self.rec, self.clock = inner, rec, clock

    def send(self, alert: Any, thread_ts: str | None = None) -> Any:
        from cali.notify.errors import PermanentDeliveryError

        kind = str(getattr(alert.kind, "value", alert.kind))
        started = self.clock.monotonic()
        try:
            receipt = self.inner.send(alert, thread_ts=thread_ts) if thread_ts else self.inner.send(alert)
        except PermanentDeliveryError:
            self.rec.inc("cali_slack_delivery_failures", kind=kind, permanent="true")
            raise
        except Exception:
            self.rec.inc("cali_slack_delivery_failures", kind=kind, permanent="false")
            raise
        self.rec.observe("cali_slack_delivery_seconds", self.clock.monotonic() - started, kind=kind)
        return receipt

    def healthcheck(self) -> Any:
        return self.inner.healthcheck()


class MeteredLLM:
    """Wraps the LLM adapter in the analyzer: calls per outcome, latency, tokens it reports."""

    def __init__(self, inner: Any, rec: Recorder) -> None:
        self.inner, self.rec = inner, rec
        self._tokens = {"prompt": 0, "completion": 0}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def analyze(self, **kwargs: Any) -> Any:
        import time

        started = time.monotonic()
        try:
            verdict = await self.inner.analyze(**kwargs)
        except Exception as exc:
            self.rec.inc("cali_llm_calls", outcome=str(getattr(exc, "reason", "llm-error")))
            raise
        finally:
            self.rec.observe("cali_llm_latency_seconds", time.monotonic() - started)
            for kind, total in (getattr(self.inner, "tokens", None) or {}).items():
                self.rec.total("cali_llm_tokens", total, kind=kind)
        self.rec.inc("cali_llm_calls", outcome="ok")
        return verdict
