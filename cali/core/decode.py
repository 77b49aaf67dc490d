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
from cali.core.records import MAX_EVENT_ID_CHARS
from cali.core.wire import WIRE, finish, row_error

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
    """Valid rows (in stream order) with where each came from, and the dead letters.

    A row is a LogRecord as a dict: timestamp (aware UTC), level (Level), service, message, and stack, host,
    trace_id, span_id, env, attributes only when the record had them; event_id always.
    """

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


class _Batch:
    """The lines of a batch of Kinesis records, and where each came from."""

    __slots__ = ("shard_id", "now", "lines", "where", "out")

    def __init__(self, shard_id: str, now: datetime, out: Decoded) -> None:
        self.shard_id, self.now, self.out = shard_id, now, out
        self.lines: list[bytes] = []
        self.where: list[tuple[RawRecord, int]] = []

    def dead(self, raw: RawRecord, reason: str, error: str, data: bytes, line: int) -> None:
        self.out.dead.append(DeadLetter(reason=reason, error=error, shard_id=self.shard_id,
                                        sequence_number=raw.sequence, line=line, data=data,
                                        arrived_at=raw.arrived_at or self.now))


def decode_batch(raws: Iterable[RawRecord], shard_id: str, now: datetime, *,
                 max_record_bytes: int = MAX_RECORD_BYTES, max_line_bytes: int = MAX_LINE_BYTES) -> Decoded:
    """`now` stands in for a record's arrival time when the stream gave none."""
    out = Decoded()
    b = _Batch(shard_id, now, out)
    lines, where = b.lines, b.where
    for raw in raws:
        data = raw.data
        if len(data) > max_record_bytes:
            b.dead(raw, "oversized", f"record is {len(data)} bytes, limit {max_record_bytes}", data, 0)
            continue
        # simple_aggregation packs several newline-terminated JSON documents into one record; one event
        # per record is the usual case, and needs no split (a blank one fails as JSON, then line by line).
        newlines = data.count(b"\n")
        if newlines == 0 or (newlines == 1 and data[-1] == 10):
            line = data[:-1] if newlines else data
            if len(line) > max_line_bytes:
                b.dead(raw, "oversized", f"line is {len(line)} bytes, limit {max_line_bytes}", line, 0)
            elif line:
                lines.append(line)
                where.append((raw, 0))
            continue
        for n, line in enumerate(data.split(b"\n")):
            if len(line) > max_line_bytes:
                b.dead(raw, "oversized", f"line is {len(line)} bytes, limit {max_line_bytes}", line, n)
            elif line and not line.isspace():
                lines.append(line)
                where.append((raw, n))
    if lines:
        _validate(b)
    return out


def _validate(b: _Batch) -> None:
    """One compiled call parses and validates the whole batch; only a batch holding a bad line takes the
    slower road, line by line, so a bad line never sinks its neighbours."""
    try:
        rows = WIRE.validate_json(b"[" + b",".join(b.lines) + b"]")
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors(include_url=False)):
            _line_by_line(b)
            return
        rows = _without_bad_rows(b, exc, b.lines, b.where)
        if rows is None:
            return
    _finish(b, rows, b.where)


def _line_by_line(b: _Batch) -> None:
    objs: list[dict[str, Any]] = []
    where: list[tuple[RawRecord, int]] = []
    lines: list[bytes] = []
    for line, (raw, n) in zip(b.lines, b.where, strict=True):
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if line.isspace():
                continue  # a blank line between events is not an event
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as bad:
                b.dead(raw, "bad_utf8", f"invalid UTF-8 at byte {bad.start}: {bad.reason}", line, n)
                continue
            b.dead(raw, "bad_json", f"invalid JSON: {exc}", line, n)
            continue
        if type(obj) is not dict:
            b.dead(raw, "not_an_object", f"expected a JSON object, got {type(obj).__name__}", line, n)
            continue
        objs.append(obj)
        where.append((raw, n))
        lines.append(line)
    if not objs:
        return
    try:
        rows = WIRE.validate_python(objs)
    except ValidationError as exc:
        rows = _without_bad_rows(b, exc, lines, where, objs)
        if rows is None:
            return
    _finish(b, rows, where)


def _without_bad_rows(b: _Batch, exc: ValidationError, lines: list[bytes], where: list[tuple[RawRecord, int]],
                      objs: list[dict[str, Any]] | None = None) -> list[Any] | None:
    """Dead-letters the rows the error names, validates the rest again; `where` is trimmed in place."""
    reasons: dict[int, list[str]] = {}
    not_objects: set[int] = set()
    for err in exc.errors(include_url=False):
        i = int(err["loc"][0])
        if len(err["loc"]) == 1 and err["type"] in ("model_type", "dict_type"):
            not_objects.add(i)
        loc = ".".join(str(p) for p in err["loc"][1:]) or "record"
        reasons.setdefault(i, []).append(f"{loc}: {err['msg']}")
    for i in sorted(reasons):
        raw, n = where[i]
        if i in not_objects:
            b.dead(raw, "not_an_object", "expected a JSON object", lines[i], n)
        else:
            b.dead(raw, "schema", "; ".join(reasons[i]), lines[i], n)
    keep = [i for i in range(len(where)) if i not in reasons]
    kept_where = [where[i] for i in keep]
    where[:] = kept_where
    if not keep:
        return None
    if objs is not None:
        return WIRE.validate_python([objs[i] for i in keep])
    return WIRE.validate_json(b"[" + b",".join(lines[i] for i in keep) + b"]")


def _finish(b: _Batch, records: list[Any], where: list[tuple[RawRecord, int]]) -> None:
    shard_id, out = b.shard_id, b.out
    rows, positions = out.rows, out.positions
    for record, (raw, n) in zip(records, where, strict=False):  # equal lengths: `where` was trimmed alike
        row, ok = finish(record)
        if not ok:
            b.dead(raw, "schema", row_error(row), _line_of(raw, n), n)
            continue
        seq = raw.sequence
        eid = f"{shard_id}:{seq}:{n}"  # event_id(), inlined: this runs for every record
        row["event_id"] = eid if len(eid) <= MAX_EVENT_ID_CHARS else event_id(shard_id, seq, n)
        rows.append(row)
        positions.append((seq, n))


def _line_of(raw: RawRecord, n: int) -> bytes:
    data = raw.data
    return data.rstrip(b"\n") if n == 0 and data.count(b"\n") <= 1 else data.split(b"\n")[n]
