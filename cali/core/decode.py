"""Kinesis record bytes -> valid LogRecords and dead letters with reasons; never raises."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from pydantic import ValidationError

from cali.core.archive import DeadLetter
from cali.core.records import LogRecord, from_wire, validation_reason

# Kinesis caps a record at 1 MiB; one log line past 256 KiB is a runaway (a dumped payload),
# which the archive would carry and no one would read.
MAX_RECORD_BYTES = 1024 * 1024
MAX_LINE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class RawRecord:
    data: bytes
    sequence_number: str
    arrived_at: datetime
    partition_key: str = ""


@dataclass(slots=True)
class Decoded:
    records: list[LogRecord] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


def decode_batch(raws: Iterable[RawRecord], shard_id: str, *, max_record_bytes: int = MAX_RECORD_BYTES,
                 max_line_bytes: int = MAX_LINE_BYTES) -> Decoded:
    out = Decoded()
    for raw in raws:
        _decode_one(raw, shard_id, out, max_record_bytes, max_line_bytes)
    return out


def _decode_one(raw: RawRecord, shard_id: str, out: Decoded, max_record: int, max_line: int) -> None:
    def dead(reason: str, error: str, data: bytes, line: int) -> None:
        out.dead.append(DeadLetter(reason=reason, error=error, shard_id=shard_id,
                                   sequence_number=raw.sequence_number, line=line, data=data,
                                   arrived_at=raw.arrived_at))

    if len(raw.data) > max_record:
        dead("oversized", f"record is {len(raw.data)} bytes, limit {max_record}", raw.data, 0)
        return
    # simple_aggregation packs several newline-terminated JSON documents into one record. UTF-8 is
    # checked per line by orjson (no second pass over the bytes); a bad line does not sink its neighbours.
    for n, line in enumerate(raw.data.split(b"\n")):
        if not line.strip():
            continue
        if len(line) > max_line:
            dead("oversized", f"line is {len(line)} bytes, limit {max_line}", line, n)
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as bad:
                dead("bad_utf8", f"invalid UTF-8 at byte {bad.start}: {bad.reason}", line, n)
                continue
            dead("bad_json", f"invalid JSON: {exc}", line, n)
            continue
        if not isinstance(obj, dict):
            dead("not_an_object", f"expected a JSON object, got {type(obj).__name__}", line, n)
            continue
        try:
            out.records.append(from_wire(obj))
        except ValidationError as exc:
            dead("schema", validation_reason(exc), line, n)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # defensive: never crash
            dead("schema", f"{type(exc).__name__}: {exc}", line, n)
