"""The log record every stage agrees on, and its normalisation from shipper/Fluent Bit JSON."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, bool):
        raise ValueError(f"timestamp must be a string or number, got {value!r}")
    elif isinstance(value, int | float):
        dt = _from_epoch(float(value))
    elif isinstance(value, str):
        dt = _from_string(value.strip())
    else:
        raise ValueError(f"timestamp must be a string or number, got {type(value).__name__}")
    if dt.tzinfo is None:  # formats without an offset are taken as UTC, as the shippers run in UTC
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


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
    try:
        return _from_epoch(float(s))
    except ValueError:
        pass
    iso = _COMMA_FRACTION.sub(r"\1.\2", s)
    if iso.endswith(("Z", "z")):
        iso = iso[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(iso)
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

    @field_validator("timestamp", mode="before")
    @classmethod
    def _ts(cls, v: Any) -> datetime:
        return parse_timestamp(v)

    @field_validator("level", mode="before")
    @classmethod
    def _lv(cls, v: Any) -> Level:
        return parse_level(v)

    @field_validator("host", "trace_id", "span_id", "env", "stack", mode="before")
    @classmethod
    def _blank_is_none(cls, v: Any) -> Any:
        # logback prints "[svc,,]" when there is no trace: an empty id means "no id".
        return None if isinstance(v, str) and not v.strip() else v

    @model_validator(mode="after")
    def _split_and_identify(self) -> LogRecord:
        # A joined multiline event arrives as one message; the first line is the message,
        # the rest is the stack, so both shippers and Fluent Bit give the same record.
        if self.stack is None and "\n" in self.message:
            head, _, rest = self.message.partition("\n")
            object.__setattr__(self, "message", head.rstrip("\r"))
            object.__setattr__(self, "stack", rest.rstrip("\n") or None)
        if not self.event_id:
            object.__setattr__(self, "event_id", self.identity_hash())
        return self

    def identity_hash(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        for part in (self.timestamp.isoformat(), self.service, self.host or "", self.level.value,
                     self.message, self.stack or ""):
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        return h.hexdigest()

    @property
    def is_alertable_level(self) -> bool:
        return self.level.rank >= Level.WARN.rank


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
_FIELDS = frozenset(LogRecord.model_fields)


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """Maps shipper/Fluent Bit/library keys onto LogRecord fields; unknown scalars become attributes."""
    out: dict[str, Any] = {}
    used: set[str] = set()
    for field, aliases in _ALIASES.items():
        for key in aliases:
            if key in raw and raw[key] is not None:
                out[field] = raw[key]
                used.add(key)
                break
    err = raw.get("err") or raw.get("error")
    if "stack" not in out and isinstance(err, dict) and isinstance(err.get("stack"), str):
        # pino/winston serialise Error objects as {"type","message","stack"}
        out["stack"] = err["stack"]
        used.add("err" if "err" in raw else "error")
    if "timestamp" not in out and INGEST_TIME_KEY in raw:
        out["timestamp"] = raw[INGEST_TIME_KEY]
    used.add(INGEST_TIME_KEY)
    if "level" not in out and "status" in raw:
        out["level"] = _level_from_http_status(raw["status"])
    attrs = dict(raw.get("attributes") or {}) if isinstance(raw.get("attributes"), dict) else {}
    used.add("attributes")
    for key, value in raw.items():
        if key in used or key in _FIELDS:
            continue
        if isinstance(value, str | int | float | bool) or value is None:
            attrs[key] = value
        else:
            attrs[key] = str(value)
    if attrs:
        out["attributes"] = attrs
    return out


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


def utc_now() -> datetime:
    return datetime.now(UTC)


__all__ = ["LogRecord", "Level", "normalize", "parse_level", "parse_timestamp", "validation_reason",
           "INGEST_TIME_KEY", "timedelta", "timezone", "utc_now"]
