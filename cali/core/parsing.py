"""Header regexes and multiline rules, defined once for CALI's shipper and the Fluent Bit config."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

# Every regex below lives in the common subset of Python `re` and Onigmo (Fluent Bit, Ruby syntax):
# `\A` rather than `^` (Onigmo's `^` also matches after any newline), no `$`, no `\h`, and
# `[\s\S]` for "anything" because Onigmo's "." does not match a newline. Named groups are written
# `(?P<name>...)`; cali.fluentbit rewrites them to `(?<name>...)`. cali.core.regex_compat checks
# user formats against the same subset.
_ANY = r"[\s\S]*"
_ISO_DATE = r"\d{4}-\d{2}-\d{2}"
_HMS = r"\d{2}:\d{2}:\d{2}"


@dataclass(frozen=True)
class LogFormat:
    name: str
    header: str
    is_json: bool
    start: str
    cont: str
    defaults: dict[str, str] = field(default_factory=dict)
    fallback_header: str | None = None
    # Compiled once: the shipper calls these a million times.
    _header_match: Any = field(init=False, repr=False, compare=False)
    _start_match: Any = field(init=False, repr=False, compare=False)
    _fallback_match: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_header_match", re.compile(self.header).match if self.header else None)
        object.__setattr__(self, "_start_match", re.compile(self.start).match)
        fb = re.compile(self.fallback_header).match if self.fallback_header else None
        object.__setattr__(self, "_fallback_match", fb)


@dataclass(frozen=True)
class Source:
    service: str
    format: str
    path: str


def continuation_of(start: str) -> str:
    # Fluent Bit's "cont" rule: every line that does not begin an event continues the current one,
    # blank lines included (Python chained tracebacks and Go goroutine dumps contain them).
    if not start.startswith("\\A"):
        raise ValueError(f"an event-start regex must begin with \\A, got {start!r}")
    return r"\A(?!" + start[2:] + ")"


def text_format(name: str, header: str, start: str, defaults: dict[str, str] | None = None) -> LogFormat:
    return LogFormat(name=name, header=header, is_json=False, start=start, cont=continuation_of(start),
                     defaults=dict(defaults or {}))


def json_format(name: str, fallback: str | None = None, defaults: dict[str, str] | None = None,
                start: str | None = None) -> LogFormat:
    # A JSON line begins an event; so does the first line of a raw crash written to the same file,
    # which the fallback header then parses.
    start = start or r"\A\{"
    return LogFormat(name=name, header="", is_json=True, start=start, cont=continuation_of(start),
                     defaults=dict(defaults or {}), fallback_header=fallback)


# Spring Boot / logback:
# 2026-11-26 12:00:00.123 ERROR [orders-api,<trace>,<span>] 1 --- [nio-8080-exec-7] c.a.o.OrderController : m
_LOGBACK = text_format(
    "logback",
    r"\A(?P<time>"
    + _ISO_DATE
    + r"[ T]"
    + _HMS
    + r"[.,]\d{3}(?:Z|[+-]\d{2}:?\d{2})?)\s+(?P<level>[A-Za-z]+)\s+"
    r"\[(?P<service>[^,\]\s]+)?,(?P<trace_id>[^,\]]*),(?P<span_id>[^,\]]*)[^\]]*\]\s+"
    r"(?P<pid>\d+)\s+---\s+\[\s*(?P<thread>[^\]]*)\]\s+(?P<logger>\S+)\s+:\s(?P<message>" + _ANY + ")",
    r"\A" + _ISO_DATE + r"[ T]" + _HMS + r"[.,]\d{3}\S*\s+[A-Za-z]+\s+\[",
)
# Python logging: "%(asctime)s %(levelname)s [%(service)s] %(name)s: %(message)s"
_PYTHON = text_format(
    "python",
    r"\A(?P<time>" + _ISO_DATE + " " + _HMS + r",\d{3})\s+(?P<level>[A-Z]+)\s+\[(?P<service>[^\]\s]+)\]\s+"
    r"(?P<logger>[^\s:]+):\s(?P<message>" + _ANY + ")",
    r"\A" + _ISO_DATE + " " + _HMS + r",\d{3}\s+[A-Z]+\s+\[",
)
# winston text: printf(`${timestamp} [${service}] ${level}: ${message}`), err.stack printed raw.
_WINSTON = text_format(
    "winston",
    r"\A(?P<time>" + _ISO_DATE + "T" + _HMS + r"(?:\.\d+)?Z)\s+\[(?P<service>[^\]\s]+)\]\s+"
    r"(?P<level>[A-Za-z]+):\s(?P<message>" + _ANY + ")",
    r"\A" + _ISO_DATE + "T" + _HMS + r"(?:\.\d+)?Z\s+\[",
)
# nginx error log: 2026/11/26 12:00:00 [error] 31#31: *4521 upstream timed out ...
_NGINX_ERROR = text_format(
    "nginx_error",
    r"\A(?P<time>\d{4}/\d{2}/\d{2} " + _HMS + r") \[(?P<level>[a-z]+)\] (?P<pid>\d+)#(?P<tid>\d+): "
    r"(?:\*(?P<connection_id>\d+) )?(?P<message>" + _ANY + ")",
    r"\A\d{4}/\d{2}/\d{2} " + _HMS + r" \[",
)
# nginx access log, "combined" plus $request_time; the request line is the message and
# normalize() derives the level from the status.
_NGINX_ACCESS = text_format(
    "nginx_access",
    r"\A(?P<remote_addr>\S+) \S+ (?P<remote_user>\S+) \[(?P<time>[^\]]+)\] "
    r"\"(?P<message>(?P<method>[A-Z]+) (?P<path>\S+) (?P<protocol>[^\"]*))\" (?P<status>\d{3}) "
    r"(?P<body_bytes>\d+|-) \"(?P<referer>[^\"]*)\" \"(?P<user_agent>[^\"]*)\"(?: (?P<request_time>[\d.]+))?",
    r"\A\S+ \S+ \S+ \[\d{2}/[A-Za-z]{3}/\d{4}:",
)
# Go zap JSON; a runtime crash is written raw to the same stream.
_ZAP = json_format("zap", r"\A(?P<message>(?:panic|fatal error): " + _ANY + ")", {"level": "FATAL"},
                   start=r"\A(?:\{|panic: |fatal error: )")
_PINO = json_format("pino")

FORMATS: dict[str, LogFormat] = {
    f.name: f for f in (_LOGBACK, _PYTHON, _ZAP, _PINO, _WINSTON, _NGINX_ERROR, _NGINX_ACCESS)
}


class MultilineJoiner:
    """Joins the physical lines of one tailed file into events, as Fluent Bit's regex multiline parser."""

    __slots__ = ("_start", "_buf", "_bytes", "_last", "_started", "flush_after_s", "max_lines", "max_bytes")

    def __init__(
        self, fmt: LogFormat, flush_after_s: float = 0.5, max_lines: int = 500, max_bytes: int = 256 * 1024
    ) -> None:
        self._start = fmt._start_match
        self._buf: list[str] = []
        self._bytes = 0
        self._last = 0.0
        # Fluent Bit's stream has no state until its first start line: lines before it match no
        # rule and each becomes an event of its own (plugins/in_tail + src/multiline/flb_ml.c).
        self._started = False
        self.flush_after_s = flush_after_s
        self.max_lines = max_lines
        self.max_bytes = max_bytes

    @property
    def pending(self) -> bool:
        return bool(self._buf)

    def feed(self, line: str, now: float) -> list[str]:
        """Returns the events this line completes: the one held before it, or the line itself."""
        buf = self._buf
        if not self._started:
            if self._start(line) is None:
                # An orphan continuation at the head of the file; an empty one makes no record.
                return [line] if line else []
            self._started = True
        if not buf:
            self._buf = [line]
            self._bytes = len(line)
            self._last = now
            return []
        if self._start(line) is not None or now - self._last >= self.flush_after_s:
            # A new header, or the flush timer would already have fired in Fluent Bit.
            out = [buf[0] if len(buf) == 1 else "\n".join(buf)]
            self._buf = [line]
            self._bytes = len(line)
            self._last = now
            return out
        size = self._bytes + len(line) + 1
        if len(buf) >= self.max_lines or size > self.max_bytes:
            # Too big for one event: emit what we have; the rest arrives as its own (raw) event
            # rather than being dropped.
            out = ["\n".join(buf)]
            self._buf = [line]
            self._bytes = len(line)
            self._last = now
            return out
        buf.append(line)
        self._bytes = size
        self._last = now
        return []

    def flush(self, now: float, force: bool = False) -> list[str]:
        buf = self._buf
        if not buf or not (force or now - self._last >= self.flush_after_s):
            return []
        self._buf = []
        self._bytes = 0
        return [buf[0] if len(buf) == 1 else "\n".join(buf)]


# The raw text of an event travels under this key from the tail input to the parser filter
# (Fluent Bit: tail `key`, multiline `key_content`, parser `key_name`). A line that its format does
# not parse keeps it, so an unparsed line is still shipped whole, as its `message`.
RAW_KEY = "message"
# Where the event was read (Fluent Bit's tail `path_key` / `offset_key`); docs/contracts.md.
LOG_FILE_KEY = "log_file"
LOG_OFFSET_KEY = "log_offset"


def _groups(m: re.Match) -> dict[str, Any]:
    # Fluent Bit's regex parsers run with skip_empty_values off: a named group that matched
    # nothing, or did not take part in the match, arrives as "".
    return {k: "" if v is None else v for k, v in m.groupdict().items()}


def parse_event(fmt: LogFormat, text: str, *, service: str, host: str | None, ingested: str,
                origin: tuple[str, int] | None = None) -> dict:
    """The record Fluent Bit's tail + parser filter + modify filters + kinesis time_key would produce.

    `origin` is (log_file, log_offset) as the tail input's path_key and offset_key write them.
    """
    rec: dict[str, Any] | None = None
    if fmt.is_json:
        if text[:1] == "{":
            try:
                obj = orjson.loads(text)
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                rec = obj
    else:
        m = fmt._header_match(text)
        if m is not None:
            rec = _groups(m)
    if rec is None and fmt._fallback_match is not None:
        m = fmt._fallback_match(text)
        if m is not None:
            rec = _groups(m)
    if rec is None:
        rec = {RAW_KEY: text}  # the parser filter failed; reserve_data keeps the raw line
    # The pipeline's own keys fill what the line lacks or left empty (Fluent Bit: a conditional
    # modify filter removes an empty one, then `add` sets it).
    if rec.get("service", "") == "":
        rec["service"] = service
    if host is not None and rec.get("host", "") == "":
        rec["host"] = host
    for key, value in fmt.defaults.items():
        if rec.get(key, "") == "":
            rec[key] = value
    if origin is not None:
        rec[LOG_FILE_KEY], rec[LOG_OFFSET_KEY] = origin
    rec["@ingested"] = ingested
    return rec


def to_kinesis_data(record: dict) -> bytes:
    return orjson.dumps(record) + b"\n"


__all__ = [
    "LogFormat",
    "Source",
    "FORMATS",
    "RAW_KEY",
    "LOG_FILE_KEY",
    "LOG_OFFSET_KEY",
    "text_format",
    "json_format",
    "continuation_of",
    "MultilineJoiner",
    "parse_event",
    "to_kinesis_data",
]
