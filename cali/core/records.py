"""The log record every stage agrees on, and its normalisation from shipper/Fluent Bit JSON."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

MAX_MESSAGE_CHARS = 32_768
MAX_STACK_CHARS = 65_536
MAX_EVENT_ID_CHARS = 128


class Level(StrEnum):
    TRACE = "TRACE"
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"
    FATAL = "FATAL"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {lv: i for i, lv in enumerate(Level)}

# Spellings seen in logback, Python logging, zap, pino, winston, nginx, syslog and glog.
_LEVEL_ALIASES: dict[str, Level] = {
    "trace": Level.TRACE, "t": Level.TRACE, "finest": Level.TRACE, "finer": Level.TRACE,
    "debug": Level.DEBUG, "d": Level.DEBUG, "fine": Level.DEBUG, "verbose": Level.DEBUG,
    "info": Level.INFO, "i": Level.INFO, "information": Level.INFO, "notice": Level.INFO,
    "informational": Level.INFO, "http": Level.INFO,
    "warn": Level.WARN, "warning": Level.WARN, "w": Level.WARN,
    "error": Level.ERROR, "err": Level.ERROR, "e": Level.ERROR, "severe": Level.ERROR,
    "fatal": Level.FATAL, "critical": Level.FATAL, "crit": Level.FATAL, "f": Level.FATAL,
    "c": Level.FATAL, "alert": Level.FATAL, "emerg": Level.FATAL, "emergency": Level.FATAL,
    "panic": Level.FATAL, "dpanic": Level.FATAL,
}


class LevelScheme(StrEnum):
    """What a numeric level means depends on who wrote it, which the key it came in tells."""

    PINO = "pino"  # pino and bunyan `level`: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal
    PYTHON = "python"  # Python logging `levelno`: 10 DEBUG, 20 INFO, 30 WARNING, 40 ERROR, 50 CRITICAL
    OTEL = "otel"  # OpenTelemetry SeverityNumber: 1-4 TRACE ... 17-20 ERROR, 21-24 FATAL


# Lower bounds of each band, highest first: a level between two named ones (Python's custom 25 or 45,
# pino's custom 35) belongs to the band below it, as both libraries compare levels numerically.
_BANDS: dict[LevelScheme, tuple[tuple[int, Level], ...]] = {
    LevelScheme.PINO: ((60, Level.FATAL), (50, Level.ERROR), (40, Level.WARN), (30, Level.INFO),
                       (20, Level.DEBUG), (0, Level.TRACE)),
    LevelScheme.PYTHON: ((50, Level.FATAL), (40, Level.ERROR), (30, Level.WARN), (20, Level.INFO),
                         (10, Level.DEBUG), (0, Level.TRACE)),
    LevelScheme.OTEL: ((21, Level.FATAL), (17, Level.ERROR), (13, Level.WARN), (9, Level.INFO),
                       (5, Level.DEBUG), (1, Level.TRACE)),
}


def parse_level(value: Any, scheme: LevelScheme = LevelScheme.PINO) -> Level:
    if isinstance(value, Level):
        return value
    if isinstance(value, bool):
        raise ValueError(f"level must be a name or number, got {value!r}")
    if isinstance(value, int | float):
        n = int(value)
        for floor, level in _BANDS[scheme]:
            if n >= floor:
                return level
        raise ValueError(f"numeric level {value!r} is below every {scheme.value} level")
    if isinstance(value, str):
        key = value.strip().lower()
        if key.isdigit():
            return parse_level(int(key), scheme)
        if key.upper() in Level.__members__:
            return Level[key.upper()]
        if key in _LEVEL_ALIASES:
            return _LEVEL_ALIASES[key]
    raise ValueError(f"unknown level {value!r}; expected one of {', '.join(Level)} or a common alias")


# nginx "2026/11/26 12:00:00", access-log "26/Nov/2026:12:00:00 +0000", Tomcat, java.util.logging.
# ISO-8601 and logback/Python logging ("2026-11-26 12:00:00,123") are read by datetime.fromisoformat.
_LOCAL_FORMATS = (
    "%Y/%m/%d %H:%M:%S",
    "%d/%b/%Y:%H:%M:%S %z",
    "%d-%b-%Y %H:%M:%S.%f",
    "%b %d, %Y %I:%M:%S %p",
)
_EPOCH_MS_FROM = 10**11  # a number above this is epoch ms: 10**11 s is the year 5138


def parse_timestamp(value: Any) -> datetime:
    """Accepts ISO-8601, epoch s/ms/us/ns, and logback/Python logging/nginx formats; returns UTC."""
    kind = type(value)
    if kind is str:
        dt = _from_string(value.strip())
    elif kind is datetime or isinstance(value, datetime):
        dt = value
    elif (kind is int or kind is float or isinstance(value, int | float)) and kind is not bool:
        dt = _from_epoch(float(value))
    else:
        raise ValueError(f"timestamp must be a string or number, got {kind.__name__}")
    if dt.tzinfo is None:  # formats without an offset are taken as UTC, as the shippers run in UTC
        return dt.replace(tzinfo=UTC)
    return dt if dt.tzinfo is UTC else dt.astimezone(UTC)


def _from_epoch(n: float) -> datetime:
    while abs(n) >= _EPOCH_MS_FROM:  # ms, us, ns
        n /= 1000.0
    try:
        return datetime.fromtimestamp(n, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"epoch {n!r} is out of range") from exc


def _from_string(s: str) -> datetime:
    if not s:
        raise ValueError("timestamp is empty")
    if s[0].isdigit() and len(s) >= 10 and s[4] == "-":  # ISO-8601 and logback/Python logging, the usual case
        try:
            return datetime.fromisoformat(s)
        except ValueError:
            pass
    try:
        return _from_epoch(float(s))
    except ValueError:
        pass
    for fmt in _LOCAL_FORMATS:
        try:
            return datetime.strptime(s, fmt)
        except ValueError:
            continue
    raise ValueError(f"unrecognised timestamp {s[:64]!r}; use ISO-8601, epoch s/ms, or logback/Python format")


Scalar = str | int | float | bool | None
# One definition of each constraint, shared by the model (one record) and the row adapter (a batch).
Service = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:/@-]+$")]
Message = Annotated[str, StringConstraints(max_length=MAX_MESSAGE_CHARS)]
Stack = Annotated[str, StringConstraints(max_length=MAX_STACK_CHARS)]
Host = Annotated[str, StringConstraints(max_length=255)]
Id = Annotated[str, StringConstraints(max_length=128)]
Env = Annotated[str, StringConstraints(max_length=64)]
EventId = Annotated[str, StringConstraints(max_length=MAX_EVENT_ID_CHARS)]


class LogRecord(BaseModel):
    """One log event: a header line plus any joined stack lines."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    timestamp: datetime = Field(description="Event time, timezone-aware UTC.")
    level: Level
    service: Service
    message: Message
    stack: Stack | None = None
    host: Host | None = None
    trace_id: Id | None = None
    span_id: Id | None = None
    env: Env | None = None
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    event_id: EventId = Field(default="", description=(
        "Assigned by the consumer from where the record entered the stream (shard, sequence number, line "
        "in the Kinesis record): a replay of the same record gets the same id, two records never share one. "
        "A field the application logged as event_id stays in attributes."))
    incident_key: str | None = Field(default=None, max_length=512, description=(
        "service|level|group of the incident the tracker counted this record in (alert-worthy records only)."))

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or info.context is PREPARED:
            return data
        return prepare_fields(dict(data))

    @field_validator("timestamp", mode="before")
    @classmethod
    def _ts(cls, v: Any) -> datetime:
        return v if type(v) is datetime and v.tzinfo is UTC else parse_timestamp(v)

    @field_validator("level", mode="before")
    @classmethod
    def _lv(cls, v: Any) -> Level:
        return v if type(v) is Level else parse_level(v)

    @property
    def is_alertable_level(self) -> bool:
        return self.level.rank >= Level.WARN.rank


# Validation context meaning "this dict is a finished row": fields are already in native form.
PREPARED: dict[str, bool] = {"prepared": True}
_BLANK_IS_NONE = ("host", "trace_id", "span_id", "env", "stack")
_LEVEL_FAST: dict[str, Level] = {}
for _alias, _lv in list(_LEVEL_ALIASES.items()) + [(m.value.lower(), m) for m in Level]:
    for _form in (_alias, _alias.upper(), _alias.capitalize()):
        _LEVEL_FAST.setdefault(_form, _lv)


def is_blank(v: Any) -> bool:
    # logback prints "[svc,,]" when there is no trace: an empty id means "no id".
    return v == "" or (type(v) is str and v[:1].isspace() and not v.strip())


def prepare_fields(d: dict[str, Any]) -> dict[str, Any]:
    """For a LogRecord built from a plain dict (an archived row, a test): parses timestamp and level,
    blanks to None, splits a multiline message; in place. A value that does not parse stays as it is, so
    validation reports it against its field. (Wire records go through cali.core.wire instead.)"""
    ts = d.get("timestamp")
    if ts is not None and (type(ts) is not datetime or ts.tzinfo is not UTC):
        try:  # noqa: SIM105 - the field validator reports what does not parse
            d["timestamp"] = parse_timestamp(ts)
        except ValueError:
            pass
    lv = d.get("level")
    if lv is not None and type(lv) is not Level:
        try:  # noqa: SIM105 - as above
            d["level"] = _LEVEL_FAST.get(lv) or parse_level(lv) if type(lv) is str else parse_level(lv)
        except ValueError:
            pass
    for key in _BLANK_IS_NONE:
        if is_blank(d.get(key)):
            d[key] = None
    msg = d.get("message")
    # A joined multiline event arrives as one message; the first line is the message,
    # the rest is the stack, so both shippers and Fluent Bit give the same record.
    if type(msg) is str and "\n" in msg and d.get("stack") is None:
        head, _, rest = msg.partition("\n")
        d["message"] = head.rstrip("\r")
        d["stack"] = rest.rstrip("\n") or None
    return d


# A line no configured format parsed arrives whole, without a level; it is kept, not dead-lettered.
_SEVERITY_WORD = re.compile(r"\b(FATAL|CRITICAL|PANIC|ERROR|WARN(?:ING)?)\b")
_GUESS_HEAD_CHARS = 160


def guess_level(message: str, stack: str | None) -> Level:
    """ERROR for a joined stack trace, the first upper-case severity word near the start, else INFO."""
    if stack:
        return Level.ERROR
    m = _SEVERITY_WORD.search(message, 0, _GUESS_HEAD_CHARS)
    return _LEVEL_FAST[m.group(1)] if m else Level.INFO


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """A shipper/Fluent Bit JSON object as a record row (cali.core.wire); raises ValidationError."""
    from cali.core.wire import normalize as normalize_row

    return normalize_row(raw)


def from_wire(raw: dict[str, Any]) -> LogRecord:
    """A LogRecord from a shipper/Fluent Bit JSON object; raises pydantic.ValidationError."""
    from cali.core.wire import from_wire as record_from_wire

    return record_from_wire(raw)


def level_from_http_status(status: Any) -> Level:
    # nginx access lines carry no level; the status class is the severity users expect.
    try:
        code = int(status)
    except (TypeError, ValueError):
        return Level.INFO
    return Level.ERROR if code >= 500 else Level.WARN if code >= 400 else Level.INFO


def validation_reason(exc: ValidationError, *, skip: int = 0) -> str:
    """One line naming each bad field and why, for DLQ entries and CLI errors (skip: leading loc parts)."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"][skip:]) or "record"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def to_json_line(record: LogRecord | dict[str, Any]) -> bytes:
    """The archive's JSON for a record or a validated row (orjson: 3x model_dump_json)."""
    return orjson.dumps(record if type(record) is dict else record.__dict__, option=orjson.OPT_UTC_Z)


__all__ = ["LogRecord", "Level", "LevelScheme", "from_wire", "guess_level", "level_from_http_status", "normalize",
           "parse_level", "parse_timestamp", "validation_reason"]
