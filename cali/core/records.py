"""The log record every stage agrees on, and its normalisation from shipper/Fluent Bit JSON."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

MAX_MESSAGE_CHARS = 32_768
MAX_STACK_CHARS = 65_536


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
# pino's numeric levels; Python logging's numeric levels map by the same bands.
_PINO_LEVELS = {10: Level.TRACE, 20: Level.DEBUG, 30: Level.INFO, 40: Level.WARN, 50: Level.ERROR,
                60: Level.FATAL}


def parse_level(value: Any) -> Level:
    if isinstance(value, Level):
        return value
    if isinstance(value, bool):
        raise ValueError(f"level must be a name or number, got {value!r}")
    if isinstance(value, int | float):
        n = int(value)
        if n in _PINO_LEVELS:
            return _PINO_LEVELS[n]
        raise ValueError(f"unknown numeric level {value!r} (pino uses 10,20,30,40,50,60)")
    if isinstance(value, str):
        key = value.strip().lower()
        if key.isdigit():
            return parse_level(int(key))
        if key.upper() in Level.__members__:
            return Level[key.upper()]
        if key in _LEVEL_ALIASES:
            return _LEVEL_ALIASES[key]
    raise ValueError(f"unknown level {value!r}; expected one of {', '.join(Level)} or a common alias")


# logback "2026-11-26 12:00:00.123", Python logging "2026-11-26 12:00:00,123",
# nginx "2026/11/26 12:00:00", access-log "26/Nov/2026:12:00:00 +0000".
_LOCAL_FORMATS = (
    "%Y-%m-%d %H:%M:%S,%f",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%d/%b/%Y:%H:%M:%S %z",
    "%d-%b-%Y %H:%M:%S.%f",
    "%b %d, %Y %I:%M:%S %p",
)
_EPOCH_MS_FROM = 10**11  # a number above this is epoch ms: 10**11 s is the year 5138
_COMMA_FRACTION = re.compile(r"(\d{2}:\d{2}:\d{2}),(\d+)")


def parse_timestamp(value: Any) -> datetime:
    """Accepts ISO-8601, epoch s/ms/us/ns, and logback/Python logging/nginx formats; returns UTC."""
    kind = type(value)
    if kind is str:
        dt = _from_string(value.strip())
    elif kind is datetime:
        dt = value
    elif kind is int or kind is float:
        dt = _from_epoch(float(value))
    elif isinstance(value, datetime):
        dt = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
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
            return datetime.fromisoformat(_COMMA_FRACTION.sub(r"\1.\2", s) if "," in s else s)
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


class LogRecord(BaseModel):
    """One log event: a header line plus any joined stack lines."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

    timestamp: datetime = Field(description="Event time, timezone-aware UTC.")
    level: Level
    service: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:/@-]+$")
    message: str = Field(max_length=MAX_MESSAGE_CHARS)
    stack: str | None = Field(default=None, max_length=MAX_STACK_CHARS)
    host: str | None = Field(default=None, max_length=255)
    trace_id: str | None = Field(default=None, max_length=128)
    span_id: str | None = Field(default=None, max_length=128)
    env: str | None = Field(default=None, max_length=64)
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    event_id: str = Field(default="", max_length=128,
                          description="As given, else a hash of timestamp, service, host, message, stack.")

    @model_validator(mode="before")
    @classmethod
    def _prepare(cls, data: Any, info: ValidationInfo) -> Any:
        # One Python pass per record (the hot path validates ~100k/s): parse the formats pydantic
        # does not know, then let pydantic-core check the native types and constraints.
        # normalize() has already done it for the dicts it returns.
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

    def identity_hash(self) -> str:
        return _identity(self.__dict__)

    @property
    def is_alertable_level(self) -> bool:
        return self.level.rank >= Level.WARN.rank


_BLANK_IS_NONE = ("host", "trace_id", "span_id", "env", "stack")
_LEVEL_FAST: dict[str, Level] = {}
for _alias, _lv in list(_LEVEL_ALIASES.items()) + [(m.value.lower(), m) for m in Level]:
    for _form in (_alias, _alias.upper(), _alias.capitalize()):
        _LEVEL_FAST.setdefault(_form, _lv)


# Validation context meaning "this dict came from normalize()": fields are already in native form.
PREPARED: dict[str, bool] = {"prepared": True}


def prepare_fields(d: dict[str, Any]) -> dict[str, Any]:
    """Parses timestamp and level, blanks to None, splits a multiline message, fills event_id; in place.

    A value that does not parse stays as it is, so the field validator reports it against its field.
    """
    ts = d.get("timestamp")
    if ts is not None and (type(ts) is not datetime or ts.tzinfo is not UTC):
        try:  # noqa: SIM105 - contextlib.suppress costs ~1 us a record on the hot path
            d["timestamp"] = parse_timestamp(ts)
        except ValueError:
            pass
    lv = d.get("level")
    if lv is not None and type(lv) is not Level:
        fast = _LEVEL_FAST.get(lv) if type(lv) is str else None
        if fast is not None:
            d["level"] = fast
        else:
            try:  # noqa: SIM105 - as above
                d["level"] = parse_level(lv)
            except ValueError:
                pass
    for key in _BLANK_IS_NONE:
        v = d.get(key)
        # logback prints "[svc,,]" when there is no trace: an empty id means "no id".
        if type(v) is str and not v.strip():
            d[key] = None
    msg = d.get("message")
    # A joined multiline event arrives as one message; the first line is the message,
    # the rest is the stack, so both shippers and Fluent Bit give the same record.
    if d.get("stack") is None and type(msg) is str and "\n" in msg:
        head, _, rest = msg.partition("\n")
        d["message"] = head.rstrip("\r")
        d["stack"] = rest.rstrip("\n") or None
    if not d.get("event_id") and type(d.get("timestamp")) is datetime and type(d.get("level")) is Level:
        d["event_id"] = _identity(d)
    return d


def _identity(d: dict[str, Any]) -> str:
    text = "\x00".join((d["timestamp"].isoformat(), d.get("service") or "", d.get("host") or "",
                        d["level"].value, d.get("message") or "", d.get("stack") or ""))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


# Keys that shippers, Fluent Bit parsers and logging libraries use for the same field.
# The first present alias wins; the others stay in attributes.
_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "time", "ts", "@timestamp", "asctime", "date"),
    "level": ("level", "severity", "levelname", "lvl", "loglevel", "log.level"),
    "message": ("message", "msg", "log"),
    "stack": ("stack", "stacktrace", "stack_trace", "exc_info", "exception", "error.stack"),
    "service": ("service", "service.name", "app", "application", "logger_service"),
    "host": ("host", "hostname", "host.name"),
    "trace_id": ("trace_id", "traceId", "trace.id", "traceid"),
    "span_id": ("span_id", "spanId", "span.id", "spanid"),
    "env": ("env", "environment", "deployment.environment"),
    "event_id": ("event_id", "eventId"),
}
# Fluent Bit's kinesis output stamps ingest time here; it is the fallback when a line has none.
INGEST_TIME_KEY = "@ingested"
_ALIAS_RANK: dict[str, tuple[str, int]] = {
    alias: (field, rank) for field, aliases in _ALIASES.items() for rank, alias in enumerate(aliases)}
# Keys consumed by normalize() itself rather than kept as attributes.
_STRUCTURAL = frozenset({INGEST_TIME_KEY})


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """Maps shipper/Fluent Bit/library keys onto LogRecord fields; unknown scalars become attributes."""
    get_alias = _ALIAS_RANK.get
    out: dict[str, Any] = {}
    chosen: dict[str, tuple[int, str]] = {}
    attrs: dict[str, Any] = {}
    for key, value in raw.items():
        hit = get_alias(key)
        if hit is not None and value is not None:
            field, rank = hit
            prev = chosen.get(field)
            if prev is None or rank < prev[0]:
                if prev is not None:  # a lower-priority alias seen first stays as an attribute
                    attrs[prev[1]] = _scalar(raw[prev[1]])
                chosen[field] = (rank, key)
                out[field] = value
                continue
        if key == "attributes" and isinstance(value, dict):
            attrs = {**value, **attrs}
        elif key in _STRUCTURAL:
            continue
        else:
            attrs[key] = _scalar(value)
    if "stack" not in out:
        err = raw.get("err") or raw.get("error")
        if isinstance(err, dict) and isinstance(err.get("stack"), str):
            # pino/winston serialise Error objects as {"type","message","stack"}
            out["stack"] = err["stack"]
            attrs.pop("err" if "err" in raw else "error", None)
    if "timestamp" not in out and INGEST_TIME_KEY in raw:
        out["timestamp"] = raw[INGEST_TIME_KEY]
    if "level" not in out and "status" in raw:
        out["level"] = _level_from_http_status(raw["status"])
    if attrs:
        out["attributes"] = attrs
    return prepare_fields(out)


def from_wire(raw: dict[str, Any]) -> LogRecord:
    """A LogRecord from a shipper/Fluent Bit JSON object; raises pydantic.ValidationError."""
    return LogRecord.model_validate(normalize(raw), context=PREPARED)


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def _level_from_http_status(status: Any) -> Level:
    # nginx access lines carry no level; the status class is the severity users expect.
    try:
        code = int(status)
    except (TypeError, ValueError):
        return Level.INFO
    return Level.ERROR if code >= 500 else Level.WARN if code >= 400 else Level.INFO


def validation_reason(exc: ValidationError) -> str:
    """One line naming each bad field and why, for DLQ entries and CLI errors."""
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "record"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def to_json_line(record: LogRecord) -> bytes:
    """The archive's JSON for a record: orjson over the validated fields (3x model_dump_json)."""
    return orjson.dumps(record.__dict__, option=orjson.OPT_UTC_Z)


def utc_now() -> datetime:
    return datetime.now(UTC)


__all__ = ["LogRecord", "Level", "from_wire", "normalize", "parse_level", "parse_timestamp", "validation_reason",
           "INGEST_TIME_KEY", "timedelta", "timezone", "utc_now"]
