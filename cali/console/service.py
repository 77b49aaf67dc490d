"""What the console pages ask, over the index port, the knowledge base and the pipeline status (no Ray here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from cali.core.clock import SystemClock
from cali.core.index import IncidentQuery, LogQuery, TrendQuery
from cali.core.ports import Clock
from cali.index.port import IndexReader, IndexWriter

LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SAMPLE_LINES = 20


class Knowledge(Protocol):
    def upsert(self, incidents: list[dict[str, Any]]) -> int:
        """Adds knowledge-base entries (cali.analysis.kb.Incident as JSON)."""
        ...


class ConsoleIndex(IndexReader, IndexWriter, Protocol):
    pass


@dataclass
class Resolution:
    note: str
    category: str
    root_cause: str = ""
    remediation: tuple[str, ...] = ()
    by: str = "console"


class ConsoleService:
    def __init__(self, index: ConsoleIndex, knowledge: Knowledge | None, status: Callable[[], dict[str, Any]],
                 clock: Clock | None = None, categories: list[str] | None = None) -> None:
        self.index, self.knowledge, self.status = index, knowledge, status
        self.clock = clock or SystemClock()
        self.categories = categories or []

    def incidents(self, status: str | None = None, service: str | None = None, text: str = "",
                  limit: int = 200) -> list[dict[str, Any]]:
        q = IncidentQuery(status=status or None, services=(service,) if service else (), text=text, limit=limit)
        return [_summary(d) for d in self.index.incidents(q)]

    def incident(self, key: str) -> dict[str, Any] | None:
        doc = self.index.incident(key)
        if doc is None:
            return None
        samples = self.index.search_logs(LogQuery(incident_key=key, limit=SAMPLE_LINES)).rows
        analysis = doc.get("analysis") or {}
        return {**doc, "samples": samples, "similar": analysis.get("similar") or []}

    def logs(self, *, text: str = "", services: tuple[str, ...] = (), levels: tuple[str, ...] = (),
             minutes: int | None = None, start: datetime | None = None, end: datetime | None = None,
             cursor: str | None = None, limit: int = 100) -> dict[str, Any]:
        if minutes is not None and start is None:
            start = self.clock.now() - timedelta(minutes=minutes)
        bad = [lv for lv in levels if lv not in LEVELS]
        if bad:
            raise ValueError(f"unknown level(s) {bad}: one of {', '.join(LEVELS)}")
        page = self.index.search_logs(LogQuery(text=text, services=services, levels=levels, start=start, end=end,
                                               cursor=cursor, limit=min(max(limit, 1), 500)))
        return {"rows": page.rows, "total": page.total, "total_is_lower_bound": page.total_is_lower_bound,
                "next_cursor": page.next_cursor}

    def trend(self, *, by: str = "level", minutes: int = 60, interval_s: int | None = None,
              services: tuple[str, ...] = (), levels: tuple[str, ...] = ()) -> dict[str, Any]:
        end = self.clock.now()
        interval = interval_s or max(60, (minutes * 60 // 60) // 60 * 60)  # about 60 buckets, whole minutes
        end = end.replace(second=0, microsecond=0) + timedelta(minutes=1)
        t = self.index.trend(TrendQuery(start=end - timedelta(minutes=minutes), end=end, interval_s=interval, by=by,
                                        services=services, levels=levels))
        return {"buckets": t.buckets, "series": t.series, "interval_s": interval}

    def health(self) -> dict[str, Any]:
        st = self.status()
        shards = st.get("shards") or []
        alerter = st.get("alerter") or {}
        problems = list(st.get("problems", []))
        if not shards and not st.get("alerter"):
            problems.append("no pipeline is running in this Ray namespace: start it with `cali run` or `cali demo`")
        return {"shards": shards, "trackers": st.get("trackers") or [], "alerter": st.get("alerter"),
                "totals": {"records": sum(s.get("records", 0) for s in shards),
                           "dlq": sum(s.get("dead", 0) + s.get("set_aside", 0) for s in shards),
                           "pending_bytes": sum(s.get("pending_bytes", 0) for s in shards),
                           "max_lag_ms": max((s.get("millis_behind_latest") or 0 for s in shards), default=0),
                           "outbox_delivered": alerter.get("delivered", 0), "outbox_dead": alerter.get("dead", 0)},
                "problems": problems}

    def resolve(self, key: str, r: Resolution) -> dict[str, Any]:
        """Marks the incident resolved and writes the resolution to the knowledge base as a curated entry,
        so the next similar alert's analysis finds it (the human half of the learning loop)."""
        from cali.analysis.kb import resolved_incident

        doc = self.index.incident(key)
        if doc is None:
            raise KeyError(key)
        if self.categories and r.category not in self.categories:
            raise ValueError(f"unknown category {r.category!r}: one of the taxonomy ({len(self.categories)} ids)")
        symptoms = [s for s in (doc.get("message"), doc.get("template")) if s][:2] or [doc.get("title", key)]
        entry = resolved_incident(title=doc.get("title") or key, category=r.category,
                                  root_cause=r.root_cause.strip() or r.note.strip(),
                                  remediation=list(r.remediation) or [r.note.strip()], symptoms=symptoms,
                                  fingerprint=doc.get("fingerprint", ""), now=self.clock.now(),
                                  severity=_severity(doc.get("severity")))
        kb_id = None
        if self.knowledge is not None:
            self.knowledge.upsert([entry.model_dump(mode="json")])
            kb_id = entry.id
        return self.index.resolve_incident(key, note=r.note, at=self.clock.now().astimezone(UTC), by=r.by,
                                           category=r.category, kb_id=kb_id)

    def version(self) -> dict[str, Any]:
        """What changed lately, cheap to ask every few seconds (the live updates)."""
        top = self.index.incidents(IncidentQuery(limit=1))
        recent = self.index.search_logs(LogQuery(limit=1))
        return {"incident": (top[0].get("updated_at"), top[0].get("incident_key")) if top else None,
                "log": recent.rows[0].get("event_id") if recent.rows else None}


def check_access(token: str | None, client_host: str, authorization: str, cookie: str) -> tuple[int, str] | None:
    """None when the request may go on; else the HTTP status and why. With a token configured, it must be
    given (Bearer header or the page's cookie); without one, only loopback clients are answered."""
    import hmac
    import ipaddress

    if token is None:
        try:
            loopback = ipaddress.ip_address(client_host).is_loopback
        except ValueError:
            loopback = client_host == "localhost"
        return None if loopback else (403, "the console answers only loopback clients unless "
                                           "CALI_API_TOKEN is set")
    given = authorization[7:] if authorization.lower().startswith("bearer ") else cookie
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        return 401, "missing or wrong token (Authorization: Bearer <token>)"
    return None


def split_values(value: str) -> tuple[str, ...]:
    """`a,b` from a query string as ("a", "b")."""
    return tuple(v for v in (x.strip() for x in value.split(",")) if v)


def _summary(doc: dict[str, Any]) -> dict[str, Any]:
    keep = ("incident_key", "fingerprint", "service", "level", "severity", "status", "title", "template", "count",
            "alerts_total", "first_seen", "last_seen", "env", "updated_at")
    out = {k: doc.get(k) for k in keep}
    out["has_analysis"] = bool(doc.get("analysis"))
    out["category"] = (doc.get("analysis") or {}).get("category") or (doc.get("resolution") or {}).get("category")
    return out


def _severity(value: str | None) -> str:
    return value if value in ("critical", "high", "medium", "low") else "medium"
