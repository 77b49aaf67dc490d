"""The incident tracker's logic: group alert-worthy records, throttle per incident, emit alerts.

State is a scope of small items (one per open window, per template group, per shard watermark), so
what a batch changes is what gets written, and no item grows with the number of incidents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cali.core.alerts import MAX_ALERT_STACK_CHARS, Alert, AlertKind, severity_for
from cali.core.dedup import RecentIds
from cali.core.fingerprint import grouping_text, incident_fingerprint, incident_key
from cali.core.ports import Clock
from cali.core.records import Level, LogRecord
from cali.core.redaction import redact
from cali.core.throttle import Throttler, Window

STACK_HEAD_LINES = 6
STACK_HEAD_LINE_CHARS = 300
MAX_INFO_MESSAGE_CHARS = 4_096
MAX_TEMPLATE_CHARS = 2_048
_MARGIN = 4_096  # longer than any secret the redaction table matches (a PEM private key is ~3 KB)
# Item names inside a tracker's scope. "|" cannot occur in a service name, so names never collide.
WINDOW, GROUP, MINER, MARK, COUNTS = "w|", "g|", "gm|", "wm|", "counts"


@dataclass(frozen=True, slots=True)
class Candidate:
    """What a ShardReader hands a tracker: a valid alert-worthy record and where it came from.

    `position` (sequence number, line in the Kinesis record) recognises a replay of the same record;
    `origin` (host, file, offset of the producer's line, hashed) recognises a producer's retry.
    """

    record: LogRecord
    shard_id: str = ""
    position: tuple[int, int] = (0, 0)
    origin: str | None = None


@dataclass
class Ingested:
    alerts: list[Alert] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # the incident key of each candidate, in order
    counted: int = 0
    replays: int = 0


def stack_head(stack: str | None, n: int = STACK_HEAD_LINES) -> list[str]:
    if not stack:
        return []
    return [ln.rstrip()[:STACK_HEAD_LINE_CHARS] for ln in stack.splitlines() if ln.strip()][:n]


def _default_miner() -> Any:
    from cali.grouping.miner import TemplateMiner

    return TemplateMiner()


def _default_restore(state: dict[str, Any]) -> Any:
    from cali.grouping.miner import TemplateMiner

    return TemplateMiner.from_state(state)


class ServiceGroups:
    """One template miner per service: the group part of the incident key, stored one item per group."""

    def __init__(self, new_miner: Callable[[], Any] = _default_miner,
                 restore: Callable[[dict[str, Any]], Any] = _default_restore) -> None:
        self._new, self._restore = new_miner, restore
        self.miners: dict[str, Any] = {}
        self._saved: dict[str, Any] = {}  # item name -> what the store holds, so only changes are written
        self._touched: set[str] = set()

    def group(self, service: str, text: str) -> tuple[str, str]:
        miner = self.miners.get(service)
        if miner is None:
            miner = self.miners[service] = self._new()
        self._touched.add(service)
        m = miner.add(text)
        return m.group_id, m.template

    def merges(self) -> list[tuple[str, str, str]]:
        """(service, old group, canonical group) for groups a miner has folded into others since last asked."""
        out = []
        for service in self._touched:
            drain = getattr(self.miners[service], "drain_merges", None)
            out.extend((service, old, new) for old, new in (drain() if drain else ()))
        return out

    def changes(self) -> tuple[dict[str, Any], set[str]]:
        puts: dict[str, Any] = {}
        deletes: set[str] = set()
        for service in self._touched:
            state = self.miners[service].to_state()
            names = {f"{MINER}{service}": state["meta"]}
            names.update((f"{GROUP}{service}|{gid}", g) for gid, g in state["groups"].items())
            prefix = f"{GROUP}{service}|"
            deletes.update(n for n in self._saved if n.startswith(prefix) and n not in names)
            puts.update((n, doc) for n, doc in names.items() if self._saved.get(n) != doc)
        return puts, deletes

    def committed(self, puts: dict[str, Any], deletes: Iterable[str]) -> None:
        for n in deletes:
            self._saved.pop(n, None)
        self._saved.update((n, doc) for n, doc in puts.items() if n.startswith((GROUP, MINER)))
        self._touched.clear()

    def load(self, items: dict[str, Any]) -> None:
        by_service: dict[str, dict[str, Any]] = {}
        for name, doc in items.items():
            if name.startswith(MINER):
                by_service.setdefault(name[len(MINER):], {"groups": {}})["meta"] = doc
            elif name.startswith(GROUP):
                service, _, gid = name[len(GROUP):].rpartition("|")
                by_service.setdefault(service, {"groups": {}})["groups"][gid] = doc
        self.miners = {s: self._restore(st) for s, st in by_service.items() if "meta" in st}
        self._saved = {n: doc for n, doc in items.items() if n.startswith((GROUP, MINER))}
        self._touched.clear()


class IncidentBook:
    def __init__(self, clock: Clock, groups: ServiceGroups | None = None, window_s: float = 300.0,
                 max_keys: int = 50_000, recent_origins: int = 100_000) -> None:
        self.clock = clock
        self.groups = groups or ServiceGroups()
        self.throttler = Throttler(window_s=window_s, max_keys=max_keys)
        self.watermarks: dict[str, tuple[int, int]] = {}
        self.origins = RecentIds(recent_origins)
        self.sent = 0
        self.suppressed = 0
        self._dirty: set[str] = set()
        self._closed: set[str] = set()
        self._marks: set[str] = set()

    def ingest(self, candidates: Iterable[Candidate]) -> Ingested:
        now = self.clock.now()
        out = Ingested()
        # Windows that expired since the last tick are summarised first: a repeat arriving now must
        # not replace its expired window and swallow that window's "xN more" summary.
        out.alerts.extend(self.tick(now))
        for c in candidates:
            r = c.record
            group_id, template = self.groups.group(r.service, grouping_text(r))
            key = incident_key(r.service, r.level.value, group_id)
            out.keys.append(key)
            if self._seen(c):
                out.replays += 1
                continue
            out.counted += 1
            fire, window = self.throttler.observe(key, r.event_id, r.timestamp, now)
            self._dirty.add(key)
            self._closed.discard(key)
            if not fire:
                self.suppressed += 1
                continue
            window.info = _window_info(r, template, incident_fingerprint(key))
            out.alerts.append(self._alert(window, AlertKind.FIRST, now))
        self._fold(self.groups.merges())
        out.alerts.extend(self._close(now))  # windows closed early to stay within max_keys
        self.sent += len(out.alerts)
        return out

    def _seen(self, c: Candidate) -> bool:
        """A replayed record (at or before the shard's watermark) or a producer's retry: counted already."""
        if c.shard_id:
            mark = self.watermarks.get(c.shard_id)
            if mark is not None and c.position <= mark:
                return True
            self.watermarks[c.shard_id] = c.position
            self._marks.add(c.shard_id)
        return c.origin is not None and self.origins.seen(c.origin)

    def _fold(self, merges: list[tuple[str, str, str]]) -> None:
        """Groups merged by the miner: an open window under an old id continues under the canonical one."""
        windows = self.throttler.windows
        for service, old, new in merges:
            for level in Level:
                src, dst = incident_key(service, level.value, old), incident_key(service, level.value, new)
                w = windows.pop(src, None)
                if w is None:
                    continue
                self._closed.add(src)
                self._dirty.discard(src)
                target = windows.get(dst)
                if target is None:
                    w.key = dst
                    windows[dst] = w
                    # The throttler keeps windows in opening order; a moved window goes back in its place.
                    self.throttler.windows = dict(sorted(windows.items(), key=lambda kv: kv[1].opened_at))
                    windows = self.throttler.windows
                else:
                    target.count += w.count
                    target.last_seen = max(filter(None, (target.last_seen, w.last_seen)), default=None)
                self._dirty.add(dst)

    def tick(self, now: datetime | None = None) -> list[Alert]:
        """Summaries for windows that closed with suppressed repeats."""
        return self._close(now or self.clock.now())

    def _close(self, now: datetime) -> list[Alert]:
        closed = self.throttler.close_due(now)
        for key in self.throttler.last_closed:
            self._closed.add(key)
            self._dirty.discard(key)
        return [self._alert(w, AlertKind.SUMMARY, now) for w in closed]

    def _alert(self, w: Window, kind: AlertKind, now: datetime) -> Alert:
        i = w.info
        level = Level(i["level"])
        # Ids derive from the event that opened the window, so a replay after a crash re-creates the same
        # alert_id and the outbox delivers it once; event ids are positions, so two windows never share one.
        return Alert(
            alert_id=f"{w.key}#{w.first_event_id}#{kind.value}", kind=kind, incident_key=w.key,
            fingerprint=i["fingerprint"], service=i["service"], level=level,
            severity=severity_for(level), message=i["message"], template=i["template"],
            stack_head=i["stack_head"], count=w.count, suppressed=w.suppressed,
            window_seconds=int(self.throttler.window.total_seconds()), first_seen=w.first_seen,
            last_seen=w.last_seen, created_at=now, trace_id=i["trace_id"], host=i["host"],
            env=i["env"], event_id=w.first_event_id if kind is AlertKind.FIRST else w.last_event_id,
            stack=i.get("stack") if kind is AlertKind.FIRST else None)

    # -- persistence: a scope of small items ------------------------------------------------------
    def changes(self) -> tuple[dict[str, Any], set[str]]:
        """What changed since the last commit: items to put (watermarks last) and to delete."""
        puts, deletes = self.groups.changes()
        windows = self.throttler.windows
        for key in self._dirty:
            if key in windows:
                puts[WINDOW + key] = windows[key].to_json()
        deletes.update(WINDOW + key for key in self._closed if key not in windows)
        puts[COUNTS] = {"sent": self.sent, "suppressed": self.suppressed}
        # Watermarks go last: a backend that must split a large commit lands them after what they cover.
        puts.update((MARK + s, {"seq": str(self.watermarks[s][0]), "line": self.watermarks[s][1]})
                    for s in sorted(self._marks))
        return puts, deletes

    def committed(self, puts: dict[str, Any], deletes: Iterable[str]) -> None:
        self.groups.committed(puts, deletes)
        self._dirty.clear()
        self._closed.clear()
        self._marks.clear()

    def load(self, items: dict[str, Any]) -> None:
        self.groups.load(items)
        self.throttler.windows = {}
        opened = sorted((Window.from_json(doc) for n, doc in items.items() if n.startswith(WINDOW)),
                        key=lambda w: w.opened_at)
        for w in opened:
            self.throttler.windows[w.key] = w
        self.watermarks = {n[len(MARK):]: (int(doc["seq"]), int(doc["line"]))
                           for n, doc in items.items() if n.startswith(MARK)}
        counts = items.get(COUNTS, {})
        self.sent, self.suppressed = counts.get("sent", 0), counts.get("suppressed", 0)
        self._dirty.clear()
        self._closed.clear()
        self._marks.clear()


def _window_info(r: LogRecord, template: str, fingerprint: str) -> dict[str, Any]:
    """What a window keeps to repeat in its summary: redacted, and bounded so an item stays small."""
    # Redacted with a margin before it is cut, so a secret across the cut cannot leave half of itself behind,
    # and a 64 KB stack costs the redaction of 20 KB.
    stack = redact(r.stack[:MAX_ALERT_STACK_CHARS + _MARGIN])[:MAX_ALERT_STACK_CHARS] if r.stack else None
    message = redact(r.message[:MAX_INFO_MESSAGE_CHARS + _MARGIN])[:MAX_INFO_MESSAGE_CHARS]
    return {"service": r.service, "level": r.level.value, "message": message,
            "template": template[:MAX_TEMPLATE_CHARS], "stack_head": stack_head(stack), "trace_id": r.trace_id,
            "host": r.host, "env": r.env, "fingerprint": fingerprint, "stack": stack}
