"""The log record every stage agrees on, and its normalisation from shipper/Fluent Bit JSON."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from operator import itemgetter
from typing import Annotated, Any, NotRequired

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from typing_extensions import TypedDict

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
_fromiso = datetime.fromisoformat


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
            return _fromiso(s)
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


class RecordRow(TypedDict):
    """A LogRecord as a plain dict: the consumer validates whole batches of these in one compiled call."""

    timestamp: datetime
    level: Level
    service: Service
    message: Message
    stack: NotRequired[Stack | None]
    host: NotRequired[Host | None]
    trace_id: NotRequired[Id | None]
    span_id: NotRequired[Id | None]
    env: NotRequired[Env | None]
    attributes: NotRequired[dict[str, Scalar]]
    event_id: EventId


ROWS: TypeAdapter[list[RecordRow]] = TypeAdapter(list[RecordRow])

# Validation context meaning "this dict came from normalize()": fields are already in native form.
PREPARED: dict[str, bool] = {"prepared": True}
_BLANK_IS_NONE = ("host", "trace_id", "span_id", "env", "stack")
_LEVEL_FAST: dict[str, Level] = {}
for _alias, _lv in list(_LEVEL_ALIASES.items()) + [(m.value.lower(), m) for m in Level]:
    for _form in (_alias, _alias.upper(), _alias.capitalize()):
        _LEVEL_FAST.setdefault(_form, _lv)


def prepare_fields(d: dict[str, Any], scheme: LevelScheme = LevelScheme.PINO,
                   blankable: tuple[str, ...] = _BLANK_IS_NONE) -> dict[str, Any]:
    """Parses timestamp and level, blanks to None, splits a multiline message; in place.

    A value that does not parse stays as it is, so validation reports it against its field.
    """
    ts = d.get("timestamp")
    if ts is not None and (type(ts) is not datetime or ts.tzinfo is not UTC):
        try:
            if type(ts) is str and ts[:1].isdigit() and ts[4:5] == "-":
                try:  # the usual case, ISO-8601 or logback/Python logging: one C call
                    parsed = _fromiso(ts)
                    if parsed.tzinfo is None:
                        # Naive means UTC (the shippers run in UTC); parsing again with the offset costs a
                        # quarter of datetime.replace(tzinfo=...), which is slow on CPython 3.11.
                        parsed = _fromiso(ts + "+00:00")
                    ts = parsed
                except ValueError:
                    ts = parse_timestamp(ts)
            else:
                ts = parse_timestamp(ts)
            if ts.tzinfo is not UTC:
                ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
            d["timestamp"] = ts
        except ValueError:
            pass
    lv = d.get("level")
    if lv is not None and type(lv) is not Level:
        fast = _LEVEL_FAST.get(lv) if type(lv) is str else None
        if fast is not None:
            d["level"] = fast
        else:
            try:  # noqa: SIM105 - as above
                d["level"] = parse_level(lv, scheme)
            except ValueError:
                pass
    for key in blankable:
        v = d.get(key)
        # logback prints "[svc,,]" when there is no trace: an empty id means "no id".
        if v == "" or (type(v) is str and v[:1].isspace() and not v.strip()):
            d[key] = None
    msg = d.get("message")
    # A joined multiline event arrives as one message; the first line is the message,
    # the rest is the stack, so both shippers and Fluent Bit give the same record.
    if type(msg) is str and "\n" in msg and d.get("stack") is None:
        head, _, rest = msg.partition("\n")
        d["message"] = head.rstrip("\r")
        d["stack"] = rest.rstrip("\n") or None
    return d


# Keys that shippers, Fluent Bit parsers and logging libraries use for the same field.
# The first present alias wins; the others stay in attributes. An application's own `event_id` is
# an attribute: CALI's event_id says where the record entered the stream.
_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "time", "ts", "@timestamp", "asctime", "date"),
    "level": ("level", "severity", "levelname", "lvl", "loglevel", "log.level", "levelno", "level_number",
              "severity_number", "SeverityNumber"),
    "message": ("message", "msg", "log"),
    "stack": ("stack", "stacktrace", "stack_trace", "exc_info", "exception", "error.stack"),
    "service": ("service", "service.name", "app", "application", "logger_service"),
    "host": ("host", "hostname", "host.name"),
    "trace_id": ("trace_id", "traceId", "trace.id", "traceid"),
    "span_id": ("span_id", "spanId", "span.id", "spanid"),
    "env": ("env", "environment", "deployment.environment"),
}
_SCHEME_OF_KEY = {"levelno": LevelScheme.PYTHON, "level_number": LevelScheme.PYTHON,
                  "severity_number": LevelScheme.OTEL, "SeverityNumber": LevelScheme.OTEL}
# Fluent Bit's kinesis output stamps ingest time here; it is the fallback when a line has none.
INGEST_TIME_KEY = "@ingested"
_FIELD_OF: dict[str, str] = {alias: f for f, aliases in _ALIASES.items() for alias in aliases}
_ALIAS_RANK: dict[str, int] = {alias: rank for aliases in _ALIASES.values() for rank, alias in enumerate(aliases)}
_NOT_SCALAR = (dict, list)
_MAX_PLANS = 4096


class _Plan:
    """What to do with one layout of keys: records from one source share it, so it is worked out once."""

    __slots__ = ("fields", "attrs", "simple", "scheme", "blankable", "names", "values", "attr_values")

    def __init__(self, keys: tuple[str, ...]) -> None:
        by_field: dict[str, list[str]] = {}
        attrs = []
        for key in keys:
            f = _FIELD_OF.get(key)
            if f is None:
                if key != INGEST_TIME_KEY:
                    attrs.append(key)
            else:
                by_field.setdefault(f, []).append(key)
        # Aliases of one field in rank order: the first non-null one wins, the others stay attributes.
        self.fields = [(f, tuple(sorted(aliases, key=_ALIAS_RANK.__getitem__))) for f, aliases in by_field.items()]
        self.attrs = tuple(attrs)
        # The common layout: one alias per field, a timestamp and a level, nothing to derive.
        self.simple = (all(len(a) == 1 for _, a in self.fields) and "timestamp" in by_field and "level" in by_field
                       and "attributes" not in attrs and ("stack" in by_field or not {"err", "error"} & set(keys)))
        self.blankable = tuple(f for f in _BLANK_IS_NONE if f in by_field)
        self.scheme = _SCHEME_OF_KEY.get(by_field["level"][0], LevelScheme.PINO) if "level" in by_field \
            else LevelScheme.PINO
        # itemgetter pulls every value in one C call; dict(zip(...)) builds the dict in C too.
        self.names = tuple(f for f, _ in self.fields)
        self.values = itemgetter(*[a[0] for _, a in self.fields]) if len(self.fields) > 1 else None
        self.attr_values = itemgetter(*attrs) if len(attrs) > 1 else None


_PLANS: dict[tuple[str, ...], _Plan] = {}


def normalize(raw: dict[str, Any]) -> dict[str, Any]:
    """Maps shipper/Fluent Bit/library keys onto LogRecord fields; unknown scalars become attributes."""
    keys = tuple(raw)
    plan = _PLANS.get(keys)
    if plan is None:
        plan = _Plan(keys)
        if len(_PLANS) < _MAX_PLANS:  # bounded: a producer inventing keys per line gets no cache
            _PLANS[keys] = plan
    if not plan.simple:
        return _normalize(raw, plan)
    out = dict(zip(plan.names, plan.values(raw), strict=True))  # type: ignore[misc]
    if out["timestamp"] is None or out["level"] is None:  # null: the general path has the fallbacks
        return _normalize(raw, plan)
    if plan.attrs:
        attrs = dict(zip(plan.attrs, plan.attr_values(raw), strict=True)) if plan.attr_values \
            else {plan.attrs[0]: raw[plan.attrs[0]]}
        if dict in (types := set(map(type, attrs.values()))) or list in types:
            attrs = {k: _scalar(v) for k, v in attrs.items()}
        out["attributes"] = attrs
    return prepare_fields(out, plan.scheme, plan.blankable)


def _normalize(raw: dict[str, Any], plan: _Plan) -> dict[str, Any]:
    out: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    for f, aliases in plan.fields:
        for key in aliases:
            value = raw[key]
            if value is None:
                continue
            if f in out:
                attrs[key] = _scalar(value)
            else:
                out[f] = value
    for key in plan.attrs:
        value = raw[key]
        if key == "attributes" and isinstance(value, dict):
            attrs = {**{k: _scalar(v) for k, v in value.items()}, **attrs}
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
    d = prepare_fields(out, plan.scheme)
    if "level" not in d and type(d.get("message")) is str:
        d["level"] = _guess_level(d["message"], d.get("stack"))
    return d


# A line no configured format parsed arrives whole, without a level; it is kept, not dead-lettered.
_SEVERITY_WORD = re.compile(r"\b(FATAL|CRITICAL|PANIC|ERROR|WARN(?:ING)?)\b")
_GUESS_HEAD_CHARS = 160


def _guess_level(message: str, stack: str | None) -> Level:
    """ERROR for a joined stack trace, the first upper-case severity word near the start, else INFO."""
    if stack:
        return Level.ERROR
    m = _SEVERITY_WORD.search(message, 0, _GUESS_HEAD_CHARS)
    return _LEVEL_FAST[m.group(1)] if m else Level.INFO


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


__all__ = ["LogRecord", "Level", "LevelScheme", "RecordRow", "ROWS", "from_wire", "normalize", "parse_level",
           "parse_timestamp", "validation_reason", "INGEST_TIME_KEY"]
