"""Shipper/Fluent Bit JSON -> record rows: one compiled pydantic-core call per Kinesis batch, then a short pass.

The aliases each shipper and logging library uses for a field, the parsing of ISO-8601 and epoch times and
the constraints are all applied by pydantic-core (Rust) over the whole batch, straight from the JSON bytes.
What it cannot express is left to `finish()`: numeric levels whose meaning depends on the key, times in
other formats, unknown keys into `attributes`, blanks, and a joined stack trace split from its message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, NotRequired

from pydantic import AliasChoices, AwareDatetime, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

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
)

# Keys that shippers, Fluent Bit parsers and logging libraries use for the same field, in order of
# preference: the first present one wins, the others stay in attributes. An application's own
# `event_id` is an attribute: CALI's event_id says where the record entered the stream.
ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "time", "ts", "@timestamp", "asctime", "date"),
    "level": ("level", "severity", "levelname", "lvl", "loglevel", "log.level"),
    "levelno": ("levelno", "level_number"),  # Python logging numbers
    "severity_number": ("severity_number", "SeverityNumber"),  # OpenTelemetry numbers
    "message": ("message", "msg", "log"),
    "stack": ("stack", "stacktrace", "stack_trace", "exc_info", "exception", "error.stack"),
    "service": ("service", "service.name", "app", "application", "logger_service"),
    "host": ("host", "hostname", "host.name"),
    "trace_id": ("trace_id", "traceId", "trace.id", "traceid"),
    "span_id": ("span_id", "spanId", "span.id", "spanid"),
    "env": ("env", "environment", "deployment.environment"),
}
# Fluent Bit's kinesis output stamps ingest time here; it is the fallback when a line has none.
INGEST_TIME_KEY = "@ingested"
_BLANK_IS_NONE = ("host", "trace_id", "span_id", "env", "stack")
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _a(field: str) -> Any:
    names = ALIASES[field]
    return Field(validation_alias=AliasChoices(*names) if len(names) > 1 else names[0])


@with_config(ConfigDict(extra="allow"))  # unknown keys stay in the row; finish() moves them into attributes
class WireRow(TypedDict):
    # An aware time or a number is parsed here; a time without an offset (UTC by the shippers' convention) or
    # in another format stays a string, and finish() parses it.
    timestamp: NotRequired[Annotated[AwareDatetime | str | float | None, _a("timestamp"),
                                     Field(union_mode="left_to_right")]]
    level: NotRequired[Annotated[str | int | float | None, _a("level")]]
    levelno: NotRequired[Annotated[int | float | str | None, _a("levelno")]]
    severity_number: NotRequired[Annotated[int | float | str | None, _a("severity_number")]]
    service: Annotated[Service, _a("service")]
    message: Annotated[Message, _a("message")]
    stack: NotRequired[Annotated[Stack | None, _a("stack")]]
    host: NotRequired[Annotated[Host | None, _a("host")]]
    trace_id: NotRequired[Annotated[Id | None, _a("trace_id")]]
    span_id: NotRequired[Annotated[Id | None, _a("span_id")]]
    env: NotRequired[Annotated[Env | None, _a("env")]]


WIRE: TypeAdapter[list[WireRow]] = TypeAdapter(list[WireRow])
_FIELDS = frozenset(WireRow.__annotations__)
_fromiso = datetime.fromisoformat


def finish(row: dict[str, Any]) -> bool:
    """Completes a row WIRE validated, in place. False when a value cannot be made valid: it is left as it
    came, so LogRecord's validation names it (and the row goes to the DLQ with that reason).

    Runs for every record: the common case (scalar extras, a level name, an ISO time) is kept short."""
    ok = True
    ingested = None
    extras = row.keys() - _FIELDS
    if extras:
        attrs: dict[str, Any] = {}
        for key in extras:
            value = row.pop(key)
            if type(value) in _SCALARS:
                if key == INGEST_TIME_KEY:
                    ingested = value
                else:
                    attrs[key] = value
            elif key == "attributes" and type(value) is dict:
                attrs = {**{k: v if type(v) in _SCALARS else str(v) for k, v in value.items()}, **attrs}
            elif (key == "err" or key == "error") and type(value) is dict and type(value.get("stack")) is str \
                    and row.get("stack") is None:
                row["stack"] = value["stack"]  # pino/winston serialise Error objects as {"type","message","stack"}
            else:
                attrs[key] = str(value)
        if attrs:
            row["attributes"] = attrs
    ts = row.get("timestamp")
    if type(ts) is datetime:
        if ts.utcoffset():
            row["timestamp"] = ts.astimezone(UTC)
    elif not _finish_time(row, ts, ingested):
        ok = False
    for key in _BLANK_IS_NONE:
        v = row.get(key)
        if v is not None and (v == "" or v[:1].isspace()) and is_blank(v):
            row[key] = None
    msg = row["message"]
    # A joined multiline event arrives as one message; the first line is the message, the rest the stack.
    if "\n" in msg and row.get("stack") is None:
        head, _, rest = msg.partition("\n")
        row["message"] = head.rstrip("\r")
        row["stack"] = rest.rstrip("\n")[:MAX_STACK_CHARS] or None
    lv = row.get("level")
    level = _LEVEL_FAST.get(lv) if type(lv) is str else None
    if level is not None and "levelno" not in row and "severity_number" not in row:
        row["level"] = level
    elif not _finish_level(row):
        ok = False
    return ok


def _finish_time(row: dict[str, Any], ts: Any, ingested: Any) -> bool:
    if ts is None:
        if ingested is None:
            return False  # a record must say when it happened, or when it was shipped
        ts = ingested
    try:
        if type(ts) is str and ts[:1].isdigit() and ts[4:5] == "-":
            try:  # ISO-8601 without an offset, logback, Python logging: UTC, in one C call
                row["timestamp"] = _fromiso(ts + "+00:00")
                return True
            except ValueError:
                pass
        row["timestamp"] = parse_timestamp(ts)
        return True
    except ValueError:
        row["timestamp"] = ts
        return False


def _finish_level(row: dict[str, Any]) -> bool:
    """The level named, else a number by the key it came in, else the HTTP status, else guessed."""
    value = row.pop("level", None)
    scheme = LevelScheme.PINO
    for key, key_scheme in (("levelno", LevelScheme.PYTHON), ("severity_number", LevelScheme.OTEL)):
        number = row.pop(key, None)
        if number is None:
            continue
        if value is None:
            value, scheme = number, key_scheme
        else:  # a name won: the number stays an attribute, as any alias that lost
            row.setdefault("attributes", {})[key] = number
    if value is None:
        status = (row.get("attributes") or {}).get("status")
        row["level"] = level_from_http_status(status) if status is not None \
            else guess_level(row["message"], row.get("stack"))
        return True
    level = _LEVEL_FAST.get(value) if type(value) is str else None
    if level is None:
        try:
            level = parse_level(value, scheme)
        except ValueError:
            row["level"] = value
            return False
    row["level"] = level
    return True


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """One record's row (for APIs and tests; the consumer does whole batches). Raises ValidationError."""
    (row,) = WIRE.validate_python([raw])
    finish(row)
    return row


def from_wire(raw: dict[str, Any]) -> LogRecord:
    """A LogRecord from a shipper/Fluent Bit JSON object; raises pydantic.ValidationError."""
    return LogRecord.model_validate(normalize(raw))


def row_error(row: dict[str, Any]) -> str:
    """Why a row finish() could not complete is invalid, in LogRecord's words."""
    from cali.core.records import validation_reason

    try:
        LogRecord.model_validate(row)
    except ValidationError as exc:
        return validation_reason(exc)
    return "record: could not be normalised"


__all__ = ["ALIASES", "INGEST_TIME_KEY", "WIRE", "WireRow", "finish", "from_wire", "normalize", "row_error"]
