"""The incident tracker's logic: group alert-worthy records, throttle per incident, emit alerts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cali.core.alerts import MAX_ALERT_STACK_CHARS, Alert, AlertKind, severity_for
from cali.core.fingerprint import MAX_HEAD_CHARS, exception_signature, masked_head
from cali.core.ports import Clock
from cali.core.records import Level, LogRecord
from cali.core.redaction import redact
from cali.core.throttle import Throttler, Window

STACK_HEAD_LINES = 6


@dataclass(frozen=True, slots=True)
class Candidate:
    """What a ShardReader hands a tracker: a valid alert-worthy record and its fingerprint."""

    record: LogRecord
    fingerprint: str


class Grouper(Protocol):
    def group(self, candidate: Candidate) -> tuple[str, str]:
        """Returns (group_id, template) for a candidate."""
        ...

    def to_state(self) -> dict[str, Any]: ...
    def load_state(self, state: dict[str, Any]) -> None: ...


class FingerprintGrouper:
    """Groups by the reader's masked fingerprint alone (no learning, nothing to persist)."""

    def group(self, candidate: Candidate) -> tuple[str, str]:
        return candidate.fingerprint, masked_head(candidate.record)

    def to_state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        return None


class MinerGrouper:
    """Groups by the streaming template miner, refined across every shard's records.

    The miner sees the message head plus the exception line, so two failures behind one generic
    header ("Request processing failed") stay two incidents.
    """

    def __init__(self, miner: Any, prefix: str = "") -> None:
        self.miner = miner
        # With N trackers each learns from its share (routed by fingerprint): the prefix keeps one
        # tracker's "g1" from being mistaken for another's in incident keys and threads.
        self.prefix = prefix

    def group(self, candidate: Candidate) -> tuple[str, str]:
        r = candidate.record
        text = r.message[:MAX_HEAD_CHARS]
        signature = exception_signature(r.stack)
        if signature and signature not in text:
            text = f"{text} | {signature}"
        m = self.miner.add(text)
        return self.prefix + m.group_id, m.template

    def to_state(self) -> dict[str, Any]:
        return {"miner": self.miner.to_state()}

    def load_state(self, state: dict[str, Any]) -> None:
        # An empty state means "nothing committed yet": start from a fresh miner.
        self.miner = type(self.miner).from_state(state["miner"]) if "miner" in state else type(self.miner)()


def stack_head(stack: str | None, n: int = STACK_HEAD_LINES) -> list[str]:
    if not stack:
        return []
    return [ln.rstrip() for ln in stack.splitlines() if ln.strip()][:n]


class IncidentBook:
    def __init__(self, clock: Clock, grouper: Grouper | None = None, window_s: float = 300.0,
                 max_keys: int = 50_000) -> None:
        self.clock = clock
        self.grouper = grouper or FingerprintGrouper()
        self.throttler = Throttler(window_s=window_s, max_keys=max_keys)
        self.sent = 0
        self.suppressed = 0

    def ingest(self, candidates: Iterable[Candidate]) -> list[Alert]:
        now = self.clock.now()
        # Windows that expired since the last tick are summarised first: a repeat arriving now must
        # not replace its expired window and swallow that window's "xN more" summary.
        alerts = self.tick(now)
        for c in candidates:
            r = c.record
            group_id, template = self.grouper.group(c)
            key = f"{r.service}|{r.level.value}|{group_id}"
            fire, window = self.throttler.observe(key, r.event_id, r.timestamp, now)
            if not fire:
                self.suppressed += 1
                continue
            # Redacted here, once per alert: the outbox, Slack and the analysis never see secrets.
            stack = redact(r.stack[:MAX_ALERT_STACK_CHARS]) if r.stack else None
            window.info = {"service": r.service, "level": r.level.value, "message": redact(r.message),
                           "template": redact(template), "stack_head": stack_head(stack), "trace_id": r.trace_id,
                           "host": r.host, "env": r.env, "fingerprint": c.fingerprint, "stack": stack}
            alerts.append(self._alert(window, AlertKind.FIRST, now))
        alerts.extend(self.tick(now))  # windows closed early to stay within max_keys
        self.sent += len(alerts)
        return alerts

    def tick(self, now: datetime | None = None) -> list[Alert]:
        """Summaries for windows that closed with suppressed repeats."""
        now = now or self.clock.now()
        return [self._alert(w, AlertKind.SUMMARY, now) for w in self.throttler.close_due(now)]

    def _alert(self, w: Window, kind: AlertKind, now: datetime) -> Alert:
        i = w.info
        level = Level(i["level"])
        # Ids derive from the event that opened the window, so a replay after a crash
        # re-creates the same alert_id and the outbox delivers it once.
        return Alert(
            alert_id=f"{w.key}#{w.first_event_id}#{kind.value}", kind=kind, incident_key=w.key,
            fingerprint=i["fingerprint"], service=i["service"], level=level,
            severity=severity_for(level), message=i["message"], template=i["template"],
            stack_head=i["stack_head"], count=w.count, suppressed=w.suppressed,
            window_seconds=int(self.throttler.window.total_seconds()), first_seen=w.first_seen,
            last_seen=w.last_seen, created_at=now, trace_id=i["trace_id"], host=i["host"],
            env=i["env"], event_id=w.first_event_id if kind is AlertKind.FIRST else w.last_event_id,
            stack=i.get("stack") if kind is AlertKind.FIRST else None)

    def to_state(self) -> dict[str, Any]:
        return {"throttle": self.throttler.to_state(), "grouper": self.grouper.to_state(),
                "sent": self.sent, "suppressed": self.suppressed}

    def load_state(self, state: dict[str, Any]) -> None:
        self.throttler.load_state(state.get("throttle", {}))
        self.grouper.load_state(state.get("grouper", {}))
        self.sent = state.get("sent", 0)
        self.suppressed = state.get("suppressed", 0)
