"""A day's ERROR/WARN records grouped into clusters: the tracker's grouping where the archive has it.

Pure: archive lines in, cluster summaries out. The reindex job runs `alertable_rows` in Ray Data tasks
(one archive object at a time) and feeds their output to one `ClusterAggregator` on the driver, whose
memory grows with the number of clusters, never with the number of records.
"""

from __future__ import annotations

import gzip
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from cali.core.fingerprint import grouping_text, incident_fingerprint, incident_key
from cali.core.records import Level, LogRecord, parse_timestamp
from cali.core.redaction import redact
from cali.grouping import TemplateMiner

ALERTABLE = (Level.WARN.value, Level.ERROR.value, Level.FATAL.value)
MESSAGE_CHARS = 1024
STACK_LINES = 6
STACK_LINE_CHARS = 200
SAMPLES = 3
# The archive is written by orjson with no spaces, so a record's level is this exact byte string; a
# message that contains the same text has its quotes escaped. Lines without it are never parsed.
_LEVEL_TAGS = tuple(b'"level":"' + lv.encode() + b'"' for lv in ALERTABLE)
# Columns of the rows `alertable_rows` makes: a record (file=None) or one archive object's counts.
ROW_FIELDS = ("key", "service", "level", "text", "ts", "event_id", "message", "stack_head", "file", "lines", "bad")


def alertable_rows(key: str, body: bytes) -> list[dict[str, Any]]:
    """The ERROR/WARN/FATAL records of one archive object (JSON lines, gzip or already inflated: Ray Data's
    reader inflates `.gz` objects itself), plus one row of its counts.

    A record keeps what grouping and the knowledge base need: the tracker's `incident_key` when it has
    one, else the text the template miner groups; the message head and the first stack lines.
    """
    lines = bad = 0
    out: list[dict[str, Any]] = []
    data = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
    for line in data.split(b"\n"):
        if not line:
            continue
        lines += 1
        if not any(tag in line for tag in _LEVEL_TAGS):
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            bad += 1
            continue
        row = _row(doc)
        if row is None:
            bad += 1
        else:
            out.append(row)
    out.append(dict.fromkeys(ROW_FIELDS) | {"file": key, "lines": lines, "bad": bad})
    return out


def _row(doc: Any) -> dict[str, Any] | None:
    if not isinstance(doc, dict):
        return None
    service, level, message, ts = doc.get("service"), doc.get("level"), doc.get("message"), doc.get("timestamp")
    if not (isinstance(service, str) and service and level in ALERTABLE and isinstance(message, str)
            and isinstance(ts, str)):
        return None  # the quality checks count these; a cluster needs a service, a level and a time
    stack = doc.get("stack") if isinstance(doc.get("stack"), str) else None
    key = doc.get("incident_key") if isinstance(doc.get("incident_key"), str) else None
    # The tracker's key is the grouping (docs/contracts.md): recompute only what it did not count.
    text = "" if key else grouping_text(LogRecord.model_construct(message=message, stack=stack))
    head = [ln[:STACK_LINE_CHARS] for ln in (stack or "").splitlines()[:STACK_LINES] if ln.strip()]
    return {"key": key or "", "service": service, "level": level, "text": text, "ts": ts,
            "event_id": str(doc.get("event_id") or ""), "message": message[:MESSAGE_CHARS],
            "stack_head": "\n".join(head), "file": None, "lines": None, "bad": None}


@dataclass
class Cluster:
    """One incident of the day: the tracker's key, or a group the job's own miner made."""

    key: str
    service: str
    level: str
    count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    template: str = ""
    # (time, event_id, message, stack head) of the earliest records, distinct messages: the first is the
    # representative; times and ids make the choice the same whatever order the records came in.
    samples: list[tuple[datetime, str, str, str]] = field(default_factory=list)

    @property
    def fingerprint(self) -> str:
        return incident_fingerprint(self.key)

    def add(self, ts: datetime, event_id: str, message: str, stack_head: str) -> None:
        self.count += 1
        self.first = ts if self.first is None or ts < self.first else self.first
        self.last = ts if self.last is None or ts > self.last else self.last
        if len(self.samples) >= SAMPLES and (ts, event_id) >= self.samples[-1][:2]:
            return
        for i, s in enumerate(self.samples):
            if s[2] == message:
                if (ts, event_id) < s[:2]:
                    self.samples[i] = (ts, event_id, message, stack_head)
                    self.samples.sort()
                return
        self.samples.append((ts, event_id, message, stack_head))
        self.samples.sort()
        del self.samples[SAMPLES:]

    def representative(self) -> str:
        """The earliest record's redacted message and stack head: the text embedded for the cluster."""
        _, _, message, stack = self.samples[0]
        return redact(f"{message}\n{stack}".strip())

    def sample_lines(self) -> list[str]:
        return [redact(s[2]) for s in self.samples]

    def title(self) -> str:
        """`service LEVEL: ` and the miner's template, or the representative message's first line."""
        head = self.template
        if not head and self.samples:
            head = next(iter(redact(self.samples[0][2]).splitlines()), "")
        return f"{self.service} {self.level}: {head or '(empty message)'}"[:300]

    def summary(self) -> dict[str, Any]:
        return {"key": self.key, "fingerprint": self.fingerprint, "service": self.service, "level": self.level,
                "count": self.count, "first_seen": _iso(self.first), "last_seen": _iso(self.last),
                "title": self.title(), "samples": self.sample_lines()}


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat().replace("+00:00", "Z") if ts else None


@dataclass
class DayCounts:
    files: int = 0
    lines: int = 0
    bad: int = 0
    alertable: int = 0
    # (service, hour "HH", level) -> records: the report's errors per service per hour
    per_hour: Counter[tuple[str, str, str]] = field(default_factory=Counter)


class ClusterAggregator:
    """Folds alertable rows into clusters; one template miner per service for rows without a key."""

    def __init__(self, new_miner: Callable[[], Any] = TemplateMiner) -> None:
        self._new_miner = new_miner
        self.miners: dict[str, Any] = {}
        self.by_key: dict[str, Cluster] = {}
        self.mined: dict[tuple[str, str, str], Cluster] = {}  # (service, level, miner group id)
        self.counts = DayCounts()

    def add_rows(self, rows: Iterable[dict[str, Any]]) -> None:
        c = self.counts
        for row in rows:
            if row.get("file") is not None:
                c.files += 1
                c.lines += row["lines"]
                c.bad += row["bad"]
                continue
            ts = parse_timestamp(row["ts"])
            service, level = row["service"], row["level"]
            c.alertable += 1
            c.per_hour[(service, f"{ts:%H}", level)] += 1
            if row["key"]:
                cluster = self.by_key.get(row["key"])
                if cluster is None:
                    cluster = self.by_key[row["key"]] = Cluster(row["key"], service, level)
            else:
                miner = self.miners.get(service)
                if miner is None:
                    miner = self.miners[service] = self._new_miner()
                match = miner.add(row["text"])
                ident = (service, level, match.group_id)
                cluster = self.mined.get(ident)
                if cluster is None:
                    cluster = self.mined[ident] = Cluster("", service, level)
                cluster.template = match.template
            cluster.add(ts, row["event_id"], row["message"], row["stack_head"] or "")

    def clusters(self) -> list[Cluster]:
        """Every cluster, the most frequent first (then by key, so the order is the same on every run).

        A group of the job's own miner is keyed by its final template (`service|LEVEL|t<hash>`): its
        miner id is a counter that would collide with the tracker's ids of the same service.
        """
        out = list(self.by_key.values())
        merged: dict[str, Cluster] = {}
        for (service, level, _), cluster in self.mined.items():
            digest = hashlib.blake2b(cluster.template.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()
            cluster.key = incident_key(service, level, f"t{digest}")
            if cluster.key in merged:  # two miner groups whose templates ended equal are one incident
                _absorb(merged[cluster.key], cluster)
            else:
                merged[cluster.key] = cluster
        out.extend(merged.values())
        return sorted(out, key=lambda c: (-c.count, c.key))


def _absorb(into: Cluster, other: Cluster) -> None:
    into.count += other.count
    into.first = min(x for x in (into.first, other.first) if x is not None)
    into.last = max(x for x in (into.last, other.last) if x is not None)
    into.samples = sorted({s[2]: s for s in sorted(into.samples + other.samples, reverse=True)}.values())[:SAMPLES]
