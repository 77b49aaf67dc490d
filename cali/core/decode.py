"""Kinesis record bytes -> validated record rows and dead letters with reasons; never raises."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError

from cali.core.archive import DeadLetter
from cali.core.records import MAX_EVENT_ID_CHARS, ROWS, normalize

# Kinesis caps a record at 1 MiB; one log line past 256 KiB is a runaway (a dumped payload),
# which the archive would carry and no one would read.
MAX_RECORD_BYTES = 1024 * 1024
MAX_LINE_BYTES = 256 * 1024


class RawRecord(NamedTuple):
    """One Kinesis record as a reader gets it (cali.sources.kinesis.Record has the same fields)."""

    data: bytes
    sequence: str
    partition_key: str = ""
    arrived_at: datetime | None = None


@dataclass(slots=True)
class Decoded:
    """Valid rows (RecordRow dicts, in stream order) with where each came from, and the dead letters."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    positions: list[tuple[str, int]] = field(default_factory=list)  # (sequence number, line) per row
    dead: list[DeadLetter] = field(default_factory=list)


def event_id(shard_id: str, sequence: str, line: int) -> str:
    """Where a record entered the stream: a replay gets the same id, two records never share one."""
    eid = f"{shard_id}:{sequence}:{line}"
    if len(eid) <= MAX_EVENT_ID_CHARS:
        return eid
    # Real shard ids and sequence numbers fit; a pathological one is hashed rather than refused.
    return hashlib.blake2b(eid.encode(), digest_size=24).hexdigest()


def decode_batch(raws: Iterable[RawRecord], shard_id: str, now: datetime, *,
                 max_record_bytes: int = MAX_RECORD_BYTES, max_line_bytes: int = MAX_LINE_BYTES) -> Decoded:
    """`now` stands in for a record's arrival time when the stream gave none."""
    out = Decoded()
    dicts: list[dict[str, Any]] = []
    where: list[tuple[RawRecord, int, bytes]] = []
    loads, norm, JSONError = orjson.loads, normalize, orjson.JSONDecodeError

    def dead(raw: RawRecord, reason: str, error: str, data: bytes, line: int) -> None:
        out.dead.append(DeadLetter(reason=reason, error=error, shard_id=shard_id,
                                   sequence_number=raw.sequence, line=line, data=data,
                                   arrived_at=raw.arrived_at or now))

    for raw in raws:
        data = raw.data
        if len(data) > max_record_bytes:
            dead(raw, "oversized", f"record is {len(data)} bytes, limit {max_record_bytes}", data, 0)
            continue
        # simple_aggregation packs several newline-terminated JSON documents into one record. UTF-8 is
        # checked per line by orjson (no second pass over the bytes); a bad line does not sink its neighbours.
        newlines = data.count(b"\n")
        if newlines == 0:
            lines: Any = (data,)
        elif newlines == 1 and data[-1] == 10:  # one event per record, the usual case: no split
            lines = (data[:-1],)
        else:
            lines = data.split(b"\n")
        for n, line in enumerate(lines):
            if len(line) > max_line_bytes:
                dead(raw, "oversized", f"line is {len(line)} bytes, limit {max_line_bytes}", line, n)
                continue
            try:
                obj = loads(line)
            except JSONError as exc:
                if not line.strip():
                    continue
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as bad:
                    dead(raw, "bad_utf8", f"invalid UTF-8 at byte {bad.start}: {bad.reason}", line, n)
                    continue
                dead(raw, "bad_json", f"invalid JSON: {exc}", line, n)
                continue
            if type(obj) is not dict:
                dead(raw, "not_an_object", f"expected a JSON object, got {type(obj).__name__}", line, n)
                continue
            try:
                d = norm(obj)
            except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # defensive: never crash
                dead(raw, "schema", f"{type(exc).__name__}: {exc}", line, n)
                continue
            eid = f"{shard_id}:{raw.sequence}:{n}"  # event_id(), inlined: this runs for every record
            d["event_id"] = eid if len(eid) <= MAX_EVENT_ID_CHARS else event_id(shard_id, raw.sequence, n)
            dicts.append(d)
            where.append((raw, n, line))
    _validate(dicts, where, out, dead)
    return out


def _validate(dicts: list[dict[str, Any]], where: list[tuple[RawRecord, int, bytes]], out: Decoded,
              dead: Any) -> None:
    """One compiled validation call for the whole batch; a second one only if some rows were bad."""
    if not dicts:
        return
    try:
        rows = ROWS.validate_python(dicts)
    except ValidationError as exc:
        reasons: dict[int, list[str]] = {}
        for err in exc.errors(include_url=False):
            i = err["loc"][0]
            loc = ".".join(str(p) for p in err["loc"][1:]) or "record"
            reasons.setdefault(int(i), []).append(f"{loc}: {err['msg']}")
        for i in sorted(reasons):
            raw, n, line = where[i]
            dead(raw, "schema", "; ".join(reasons[i]), line, n)
        keep = [i for i in range(len(dicts)) if i not in reasons]
        dicts = [dicts[i] for i in keep]
        where = [where[i] for i in keep]
        rows = ROWS.validate_python(dicts) if dicts else []
    out.rows = rows
    out.positions = [(raw.sequence, n) for raw, n, _ in where]
