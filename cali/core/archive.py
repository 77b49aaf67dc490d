"""S3 archive layout: object keys, gzip JSON-lines encoding and the dead-letter record (pure, no I/O)."""

from __future__ import annotations

import base64
import gzip
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

# Level 3: measured on generated logs, 1.9x faster than level 6 for 11% more bytes (ratio 5.0 vs 5.6);
# compression is a fifth of the hot path's time at level 6.
GZIP_LEVEL = 3
RAW_PREFIX = "raw/"
DLQ_PREFIX = "dlq/"

# Kinesis shard ids look like "shardId-000000000001"; anything that could add a path segment is refused.
_SHARD_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
# Kinesis API pattern for SequenceNumber: 0|([1-9]\d{0,128}).
_SEQUENCE = re.compile(r"^(0|[1-9][0-9]{0,128})$")


class DeadLetterReason(StrEnum):
    BAD_UTF8 = "bad_utf8"
    BAD_JSON = "bad_json"
    NOT_AN_OBJECT = "not_an_object"
    SCHEMA = "schema"
    OVERSIZED = "oversized"
    # Valid records the trackers failed on (after bounded retries): archived as usual, and kept here
    # with the error so they can be inspected and replayed; they were not counted in any incident.
    ALERTING_REJECTED = "alerting_rejected"
    ALERTING_UNAVAILABLE = "alerting_unavailable"
    # Valid, archived records the log index refused for good (its reason in `error`): not searchable.
    INDEX_REJECTED = "index_rejected"


DLQ_REASONS = frozenset(r.value for r in DeadLetterReason)


def _utc(arrived: datetime) -> datetime:
    if arrived.tzinfo is None:
        # A naive time would silently partition by the host's zone; the caller must say what it is.
        raise ValueError(f"arrival time {arrived.isoformat()} has no timezone; pass an aware datetime")
    return arrived.astimezone(UTC)


def _check_batch(shard_id: str, first_seq: str, last_seq: str) -> None:
    if not _SHARD_ID.match(shard_id):
        raise ValueError(f"shard id {shard_id!r} is not a Kinesis shard id (letters, digits, _.:-)")
    for name, seq in (("first_seq", first_seq), ("last_seq", last_seq)):
        if not _SEQUENCE.match(seq):
            raise ValueError(f"{name} {seq!r} is not a Kinesis sequence number (decimal, no leading zeros)")
    if int(first_seq) > int(last_seq):
        raise ValueError(f"first_seq {first_seq} is after last_seq {last_seq}")


def raw_key(shard_id: str, first_seq: str, last_seq: str, arrived: datetime) -> str:
    """raw/dt=YYYY-MM-DD/hour=HH/<shard>-<first>-<last>.jsonl.gz; `arrived` is the first record's arrival."""
    _check_batch(shard_id, first_seq, last_seq)
    at = _utc(arrived)
    return f"{RAW_PREFIX}dt={at:%Y-%m-%d}/hour={at:%H}/{shard_id}-{first_seq}-{last_seq}.jsonl.gz"


def dlq_key(shard_id: str, first_seq: str, last_seq: str, arrived: datetime) -> str:
    """dlq/dt=YYYY-MM-DD/<shard>-<first>-<last>.jsonl.gz; `arrived` is the first record's arrival."""
    _check_batch(shard_id, first_seq, last_seq)
    at = _utc(arrived)
    return f"{DLQ_PREFIX}dt={at:%Y-%m-%d}/{shard_id}-{first_seq}-{last_seq}.jsonl.gz"


def encode_jsonl_gz(rows: list[bytes]) -> bytes:
    """Gzip (GZIP_LEVEL, mtime 0) of one JSON document per line: the same rows always give the same bytes.

    Rows are compact JSON documents without a newline, as orjson writes them (it escapes one inside a
    string): they are joined, not scanned, since this runs on every archived record.
    """
    # mtime=0 and no file name in the header, so a replayed batch overwrites its object with equal bytes.
    return gzip.compress(b"\n".join(rows) + b"\n" if rows else b"", compresslevel=GZIP_LEVEL, mtime=0)


def decode_jsonl_gz(body: bytes) -> list[dict[str, Any]]:
    """Inverse of encode_jsonl_gz; every line must be a JSON object."""
    out: list[dict[str, Any]] = []
    for n, line in enumerate(gzip.decompress(body).split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"line {n} is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise ValueError(f"line {n} is a JSON {type(doc).__name__}, expected an object")
        out.append(doc)
    return out


@dataclass(frozen=True)
class DeadLetter:
    """One rejected input line, kept with its original bytes so it can be inspected and replayed."""

    reason: str
    error: str
    shard_id: str
    sequence_number: str
    line: int  # position of the line inside the Kinesis record (aggregated records hold several)
    data: bytes
    arrived_at: datetime

    def __post_init__(self) -> None:
        if self.reason not in DLQ_REASONS:
            raise ValueError(f"dead-letter reason {self.reason!r} is not one of {sorted(DLQ_REASONS)}")
        if not isinstance(self.data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, got {type(self.data).__name__}")
        _utc(self.arrived_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": str(self.reason),
            "error": self.error,
            "shard_id": self.shard_id,
            "sequence_number": self.sequence_number,
            "line": self.line,
            "data_b64": base64.b64encode(bytes(self.data)).decode("ascii"),
            "arrived_at": _utc(self.arrived_at).isoformat(),
        }

    def to_json(self) -> bytes:
        """One compact JSON line (no trailing newline), the DLQ object's row format."""
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> DeadLetter:
        return cls(
            reason=doc["reason"],
            error=doc["error"],
            shard_id=doc["shard_id"],
            sequence_number=doc["sequence_number"],
            line=int(doc["line"]),
            data=base64.b64decode(doc["data_b64"], validate=True),
            arrived_at=datetime.fromisoformat(doc["arrived_at"]),
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> DeadLetter:
        return cls.from_dict(orjson.loads(raw))


__all__ = ["DLQ_REASONS", "DeadLetter", "DeadLetterReason", "decode_jsonl_gz", "dlq_key", "encode_jsonl_gz",
           "raw_key"]
