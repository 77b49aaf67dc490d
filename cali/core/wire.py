"""Shipper/Fluent Bit JSON -> record rows: one compiled pydantic-core call per Kinesis batch, then a short pass.

pydantic-core (Rust) parses the batch's JSON, resolves the aliases each shipper and logging library uses
for a field, checks the constraints and keeps the keys it does not know apart (they become
`attributes`). What it cannot express well is left to `finish()`: times in the shapes logs write them,
levels whose numbers mean what their key says, blanks, and a joined stack trace split from its message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from cali.core.records import (
    _LEVEL_FAST,
    MAX_STACK_CHARS,
    Env,
    Host,
    Id,
    LevelScheme,
    LogRecord,
    Message,
    Service,
    Stack,
    guess_level,
    is_blank,
    level_from_http_status,
    parse_level,
    parse_timestamp,
    validation_reason,
)

# Keys that shippers, Fluent Bit parsers and logging libraries use for the same field, in order of
# preference: the first present one wins, the others stay in attributes. An application's own
# `event_id` is an attribute: CALI's event_id says where the record entered the stream.
ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "time", "ts", "@timestamp", "asctime", "date"),
    "level": ("level", "severity", "levelname", "lvl", "loglevel", "log.level"),
    "message": ("message", "msg", "log"),
    "stack": ("stack", "stacktrace", "stack_trace", "exc_info", "exception", "error.stack"),
    "service": ("service", "service.name", "app", "application", "logger_service"),
    "host": ("host", "hostname", "host.name"),
    "trace_id": ("trace_id", "traceId", "trace.id", "traceid"),
    "span_id": ("span_id", "spanId", "span.id", "spanid"),
    "env": ("env", "environment", "deployment.environment"),
}
# A level given as a number means what its key says (pino's `level` is the default scheme).
NUMERIC_LEVELS = (("levelno", LevelScheme.PYTHON), ("level_number", LevelScheme.PYTHON),
                  ("severity_number", LevelScheme.OTEL), ("SeverityNumber", LevelScheme.OTEL))
# Fluent Bit's kinesis output stamps ingest time here; it is the fallback when a line has none.
INGEST_TIME_KEY = "@ingested"
_BLANK_IS_NONE = ("host", "trace_id", "span_id", "env", "stack")
_SCALARS = frozenset({str, int, float, bool, type(None)})
_fromiso = datetime.fromisoformat


def _a(field: str, default: Any = None) -> Any:
    names = ALIASES[field]
    return Field(default, validation_alias=AliasChoices(*names) if len(names) > 1 else names[0])


class WireRecord(BaseModel):
    """A record as pydantic-core takes it from the JSON: aliases resolved, constraints checked, the keys it
    does not know kept apart (`__pydantic_extra__`), which is what `attributes` becomes."""

    model_config = ConfigDict(extra="allow")

    # Times and levels come in many shapes: finish() parses them, where a failed attempt costs little.
    timestamp: Any = _a("timestamp")
    level: Any = _a("level")
    service: Service = _a("service", ...)
    message: Message = _a("message", ...)
    stack: Stack | None = _a("stack")
    host: Host | None = _a("host")
    trace_id: Id | None = _a("trace_id")
    span_id: Id | None = _a("span_id")
    env: Env | None = _a("env")


WIRE: TypeAdapter[list[WireRecord]] = TypeAdapter(list[WireRecord])


def finish(record: WireRecord) -> tuple[dict[str, Any], bool]:
    """The row of a record WIRE validated, and whether it is valid. An invalid value is left as it came,
    so LogRecord's validation names it (and the row goes to the DLQ with that reason).

    Runs for every record: the common case (scalar extras, a level name, an ISO time) is kept short."""
    row: dict[str, Any] = record.__dict__
    extras = record.__pydantic_extra__
    ok = True
    ingested = None
    if extras:
        ingested = extras.pop(INGEST_TIME_KEY, None)
        if not _SCALARS.issuperset(map(type, extras.values())):
            extras = _attributes(row, extras)
        if extras:
            row["attributes"] = extras
    ts = row["timestamp"]
    try:
        row["timestamp"] = _iso_utc(ts) if type(ts) is str and ts[4:5] == "-" \
            else parse_timestamp(ts if ts is not None else ingested)
    except (ValueError, TypeError):
        ok = False
    for key in _BLANK_IS_NONE:
        v = row[key]
        if v is not None and (v == "" or v[:1].isspace()) and is_blank(v):
            row[key] = None
    msg = row["message"]
    # A joined multiline event arrives as one message; the first line is the message, the rest the stack.
    if "\n" in msg and row["stack"] is None:
        head, _, rest = msg.partition("\n")
        row["message"] = head.rstrip("\r")
        row["stack"] = rest.rstrip("\n")[:MAX_STACK_CHARS] or None
    lv = row["level"]
    level = _LEVEL_FAST.get(lv) if type(lv) is str else None
    if level is not None:
        row["level"] = level
    elif not _finish_level(row, extras):
        ok = False
    return row, ok


def _iso_utc(ts: str) -> datetime:
    """ISO-8601, logback, Python logging in one C call; no offset means UTC (the shippers' convention)."""
    try:
        dt = _fromiso(ts)
    except ValueError:
        return parse_timestamp(ts)
    if dt.tzinfo is None:
        # parsing again with the offset costs a quarter of datetime.replace(tzinfo=...) on CPython 3.11
        return _fromiso(ts + "+00:00") if len(ts) > 10 else dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC) if dt.utcoffset() else dt


def _attributes(row: dict[str, Any], extras: dict[str, Any]) -> dict[str, Any]:
    """Extras with a structured value: an `attributes` object is merged, an Error object gives the stack,
    anything else is kept as its string."""
    attrs: dict[str, Any] = {}
    for key, value in extras.items():
        if type(value) in _SCALARS:
            attrs[key] = value
        elif key == "attributes" and type(value) is dict:
            attrs = {**{k: v if type(v) in _SCALARS else str(v) for k, v in value.items()}, **attrs}
        elif (key == "err" or key == "error") and type(value) is dict and type(value.get("stack")) is str \
                and row["stack"] is None:
            row["stack"] = value["stack"]  # pino/winston serialise Error objects as {"type","message","stack"}
        else:
            attrs[key] = str(value)
    return attrs


def _finish_level(row: dict[str, Any], extras: dict[str, Any] | None) -> bool:
    """Not a level name: a number, by the key it came in; else the HTTP status; else guessed."""
    value, scheme = row["level"], LevelScheme.PINO
    if value is None and extras:
        for key, key_scheme in NUMERIC_LEVELS:
            if extras.get(key) is not None:
                value, scheme = extras.pop(key), key_scheme
                break
    if value is None:
        status = extras.get("status") if extras else None
        row["level"] = level_from_http_status(status) if status is not None \
            else guess_level(row["message"], row["stack"])
        return True
    try:
        row["level"] = parse_level(value, scheme)
    except ValueError:
        return False
    return True


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """One record's row (for APIs and tests; the consumer does whole batches). Raises ValidationError."""
    (record,) = WIRE.validate_python([raw])
    return finish(record)[0]


def from_wire(raw: dict[str, Any]) -> LogRecord:
    """A LogRecord from a shipper/Fluent Bit JSON object; raises pydantic.ValidationError."""
    return LogRecord.model_validate(normalize(raw))


def row_error(row: dict[str, Any]) -> str:
    """Why a row finish() could not make valid is invalid, in LogRecord's words."""
    try:
        LogRecord.model_validate(row)
    except ValidationError as exc:
        return validation_reason(exc)
    return "record: could not be normalised"


__all__ = ["ALIASES", "INGEST_TIME_KEY", "NUMERIC_LEVELS", "WIRE", "WireRecord", "finish", "from_wire",
           "normalize", "row_error"]
