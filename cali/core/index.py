"""What the index holds and how it is asked: log and incident documents, queries, the incident merge (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cali.core.alerts import Alert, AlertKind
from cali.core.fingerprint import incident_fingerprint

# The fields every log document has, in both adapters and in what Firehose writes (docs/console.md).
LOG_KEYWORDS = ("level", "service", "env", "host", "trace_id", "span_id", "fingerprint", "incident_key",
                "event_id", "log_file", "origin")
LOG_TEXT = ("message", "stack")
MAX_ALERTS_KEPT = 50  # per incident document; older ones stay in the outbox and Slack
ORIGIN = "cali"  # documents CALI writes; Firehose's are marked "firehose" by the index's default pipeline


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)


def to_millis(value: str | datetime) -> int:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time {value.isoformat()} has no timezone")
    return int(value.timestamp() * 1000)


def from_millis(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def log_document(row: dict[str, Any]) -> dict[str, Any]:
    """A validated record (RecordRow, or its archived JSON) as a log document.

    The origin (`log_file`, `log_offset`) is lifted to the top level, where Fluent Bit puts it in what
    Firehose indexes, so one query finds a line whichever way it came in.
    """
    attrs = dict(row.get("attributes") or {})
    key = row.get("incident_key")
    doc: dict[str, Any] = {
        "@timestamp": _iso(row["timestamp"]), "level": str(row["level"]), "service": row["service"],
        "message": row["message"], "event_id": row["event_id"], "origin": ORIGIN,
    }
    for name in ("stack", "host", "trace_id", "span_id", "env"):
        if row.get(name):
            doc[name] = row[name]
    if key:
        doc["incident_key"] = key
        doc["fingerprint"] = incident_fingerprint(key)
    if "log_file" in attrs:
        doc["log_file"] = str(attrs.pop("log_file"))
    if "log_offset" in attrs:
        offset = attrs.pop("log_offset")
        if isinstance(offset, int) or (isinstance(offset, str) and offset.isdigit()):
            doc["log_offset"] = int(offset)
    if attrs:
        doc["attributes"] = {k: v for k, v in attrs.items() if v is not None}
    return doc


def log_document_problem(doc: dict[str, Any]) -> str | None:
    """Why an index would refuse this document (the OpenSearch mapping's rules), or None."""
    for name in ("event_id", "@timestamp", "level", "service", "message"):
        if not isinstance(doc.get(name), str):
            return f"{name} is missing or not a string"
    try:
        to_millis(doc["@timestamp"])
    except ValueError:
        return f"failed to parse field [@timestamp] of type [date]: {doc['@timestamp']!r}"
    offset = doc.get("log_offset")
    if offset is not None and (isinstance(offset, bool) or not isinstance(offset, int)):
        return f"failed to parse field [log_offset] of type [long]: {offset!r}"
    for name in LOG_KEYWORDS:
        if isinstance(doc.get(name), dict | list):
            return f"field [{name}] of type [keyword] takes one value, not a {type(doc[name]).__name__}"
    return None


def daily_index(prefix: str, timestamp: str | datetime) -> str:
    """`<prefix>-YYYY-MM-DD`: the name Firehose gives with OneDay rotation (it appends the UTC date)."""
    at = datetime.fromisoformat(timestamp.replace("Z", "+00:00")) if isinstance(timestamp, str) else timestamp
    return f"{prefix}-{at.astimezone(UTC):%Y-%m-%d}"


# -- queries ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LogQuery:
    """Full-text search over message and stack (every word must match), filters, newest first."""

    text: str = ""
    services: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None  # exclusive
    incident_key: str | None = None
    limit: int = 50
    cursor: str | None = None  # from the previous page's next_cursor


@dataclass
class LogPage:
    rows: list[dict[str, Any]]
    total: int  # matches, counted up to TOTAL_CAP
    next_cursor: str | None = None
    total_is_lower_bound: bool = False  # the index stopped counting early: at least `total` match


TOTAL_CAP = 10_000


@dataclass(frozen=True)
class TrendQuery:
    start: datetime
    end: datetime
    interval_s: int = 60
    by: str = "level"  # or "service"
    services: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.by not in ("level", "service"):
            raise ValueError(f"trend by {self.by!r}: use level or service")
        if self.interval_s < 60 or self.interval_s % 60:
            raise ValueError(f"interval {self.interval_s}s: use a whole number of minutes")


@dataclass
class Trend:
    """Counts per bucket start (epoch ms, every bucket of the range, zeros included) per series."""

    buckets: list[int]
    series: dict[str, list[int]] = field(default_factory=dict)


def trend_buckets(q: TrendQuery) -> list[int]:
    step = q.interval_s * 1000
    first = to_millis(q.start) // step * step
    return list(range(first, to_millis(q.end), step))


def cursor_of(row: dict[str, Any]) -> str:
    return f"{to_millis(row['@timestamp'])}|{row['event_id']}"


def parse_cursor(cursor: str) -> tuple[int, str]:
    ms, _, event_id = cursor.partition("|")
    if not ms.isdigit() or not event_id:
        raise ValueError(f"bad cursor {cursor!r}")
    return int(ms), event_id


_WORD = re.compile(r"[^\W_]+")
STACK_SEARCHED_CHARS = 2_000


def words(text: str) -> list[str]:
    """The words of a search: runs of letters and digits, lower-cased (SQLite's unicode61 tokenizer and the
    OpenSearch mapping's `cali_words` analyzer split text the same way)."""
    return [w.lower() for w in _WORD.findall(text)]


# -- incidents -------------------------------------------------------------------------------------------
def window_id(alert: Alert) -> str:
    """FIRST and SUMMARY of one throttle window share `<key>#<first event id>`; an ANALYSIS names its FIRST."""
    base = alert.parent_alert_id if alert.kind is AlertKind.ANALYSIS and alert.parent_alert_id else alert.alert_id
    return base.rsplit("#", 1)[0]


def merge_alert(doc: dict[str, Any] | None, alert: Alert) -> dict[str, Any]:
    """The incident document after one more delivered alert. Idempotent: the same alert twice changes nothing.

    Occurrences are counted per throttle window (a SUMMARY carries the window's whole count), so the total
    is the sum over windows of the largest count seen. A FIRST after a resolution reopens the incident.
    """
    doc = dict(doc or {})
    alerts: list[dict[str, Any]] = list(doc.get("alerts") or [])
    if any(a["alert_id"] == alert.alert_id for a in alerts):
        return doc
    windows: dict[str, int] = dict(doc.get("windows") or {})
    wid = window_id(alert)
    if alert.kind is not AlertKind.ANALYSIS:
        windows[wid] = max(windows.get(wid, 0), alert.count)
    first, last = _iso(alert.first_seen), _iso(alert.last_seen)
    doc.update({
        "incident_key": alert.incident_key, "fingerprint": alert.fingerprint, "service": alert.service,
        "level": alert.level.value, "severity": alert.severity.value,
        "first_seen": min(filter(None, (doc.get("first_seen"), first))),
        "last_seen": max(filter(None, (doc.get("last_seen"), last))),
        "windows": windows, "count": sum(windows.values()), "updated_at": _iso(alert.created_at),
    })
    doc.setdefault("title", alert.message.splitlines()[0][:300] if alert.message else alert.template)
    doc.setdefault("template", alert.template)
    doc.setdefault("status", "open")
    for name in ("env", "host", "trace_id"):
        value = getattr(alert, name)
        if value and not doc.get(name):
            doc[name] = value
    if alert.kind is AlertKind.FIRST:
        doc["message"], doc["stack_head"] = alert.message, list(alert.stack_head)
        if alert.stack:
            doc["stack"] = alert.stack
        resolution = doc.get("resolution")
        if doc.get("status") == "resolved" and resolution and resolution.get("resolved_at", "") < first:
            doc["status"] = "open"  # it came back after it was resolved
    if alert.kind is AlertKind.ANALYSIS and alert.analysis is not None:
        doc["analysis"] = alert.analysis
    alerts.append({"alert_id": alert.alert_id, "kind": alert.kind.value, "created_at": _iso(alert.created_at),
                   "count": alert.count, "suppressed": alert.suppressed, "first_seen": first, "last_seen": last})
    alerts.sort(key=lambda a: a["created_at"])
    doc["alerts"] = alerts[-MAX_ALERTS_KEPT:]
    doc["alerts_total"] = int(doc.get("alerts_total") or 0) + 1
    return doc


def resolve(doc: dict[str, Any], *, note: str, at: datetime, by: str = "console", category: str | None = None,
            kb_id: str | None = None) -> dict[str, Any]:
    """The incident marked resolved, with the engineer's note (and the knowledge-base entry it became)."""
    if not note.strip():
        raise ValueError("a resolution needs a note: what was wrong and what fixed it")
    out = dict(doc)
    out["status"] = "resolved"
    out["resolution"] = {"note": note.strip(), "resolved_at": _iso(at), "resolved_by": by,
                         "category": category, "kb_id": kb_id}
    out["updated_at"] = _iso(at)
    return out


@dataclass(frozen=True)
class IncidentQuery:
    status: str | None = None  # open | resolved
    services: tuple[str, ...] = ()
    text: str = ""  # words in the title or template
    limit: int = 100


def incident_matches(doc: dict[str, Any], q: IncidentQuery) -> bool:
    """The reference semantics of an incident query (the SQLite adapter filters with it)."""
    if q.status and doc.get("status") != q.status:
        return False
    if q.services and doc.get("service") not in q.services:
        return False
    if q.text:
        have = set(words(f"{doc.get('title', '')} {doc.get('template', '')} {doc.get('service', '')}"))
        return all(w in have for w in words(q.text))
    return True
