"""Header regexes and multiline rules, defined once for CALI's shipper and the Fluent Bit config."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

# Every regex below lives in the common subset of Python `re` and Onigmo (Fluent Bit, Ruby syntax):
# `\A` rather than `^` (Onigmo's `^` also matches after any newline), no `$`, no `\h`, and
# `[\s\S]` for "anything" because Onigmo's "." does not match a newline. Named groups are written
# `(?P<name>...)`; cali.fluentbit rewrites them to `(?<name>...)`.
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


def _not(start: str) -> str:
    # Fluent Bit's "cont" rule: every line that does not begin an event continues the current one,
    # blank lines included (Python chained tracebacks and Go goroutine dumps contain them).
    assert start.startswith("\\A"), start
    return r"\A(?!" + start[2:] + ")"


def _text(name: str, header: str, start: str, defaults: dict[str, str] | None = None) -> LogFormat:
    return LogFormat(
        name=name, header=header, is_json=False, start=start, cont=_not(start), defaults=defaults or {}
    )


def _json(name: str, fallback: str | None, defaults: dict[str, str] | None = None) -> LogFormat:
    # A JSON line begins an event; so does the first line of a raw Go crash written to the same file.
    start = r"\A(?:\{|panic: |fatal error: )" if fallback else r"\A\{"
    return LogFormat(
        name=name,
        header="",
        is_json=True,
        start=start,
        cont=_not(start),
        defaults=defaults or {},
        fallback_header=fallback,
    )


# Spring Boot / logback:
# 2026-11-26 12:00:00.123 ERROR [orders-api,<trace>,<span>] 1 --- [nio-8080-exec-7] c.a.o.OrderController : m
_LOGBACK = _text(
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
_PYTHON = _text(
    "python",
    r"\A(?P<time>" + _ISO_DATE + " " + _HMS + r",\d{3})\s+(?P<level>[A-Z]+)\s+\[(?P<service>[^\]\s]+)\]\s+"
    r"(?P<logger>[^\s:]+):\s(?P<message>" + _ANY + ")",
    r"\A" + _ISO_DATE + " " + _HMS + r",\d{3}\s+[A-Z]+\s+\[",
)
# winston text: printf(`${timestamp} [${service}] ${level}: ${message}`), err.stack printed raw.
_WINSTON = _text(
    "winston",
    r"\A(?P<time>" + _ISO_DATE + "T" + _HMS + r"(?:\.\d+)?Z)\s+\[(?P<service>[^\]\s]+)\]\s+"
    r"(?P<level>[A-Za-z]+):\s(?P<message>" + _ANY + ")",
    r"\A" + _ISO_DATE + "T" + _HMS + r"(?:\.\d+)?Z\s+\[",
)
# nginx error log: 2026/11/26 12:00:00 [error] 31#31: *4521 upstream timed out ...
_NGINX_ERROR = _text(
    "nginx_error",
    r"\A(?P<time>\d{4}/\d{2}/\d{2} " + _HMS + r") \[(?P<level>[a-z]+)\] (?P<pid>\d+)#(?P<tid>\d+): "
    r"(?:\*(?P<connection_id>\d+) )?(?P<message>" + _ANY + ")",
    r"\A\d{4}/\d{2}/\d{2} " + _HMS + r" \[",
)
# nginx access log, "combined" plus $request_time; the request line is the message and
# normalize() derives the level from the status.
_NGINX_ACCESS = _text(
    "nginx_access",
    r"\A(?P<remote_addr>\S+) \S+ (?P<remote_user>\S+) \[(?P<time>[^\]]+)\] "
    r"\"(?P<message>(?P<method>[A-Z]+) (?P<path>\S+) (?P<protocol>[^\"]*))\" (?P<status>\d{3}) "
    r"(?P<body_bytes>\d+|-) \"(?P<referer>[^\"]*)\" \"(?P<user_agent>[^\"]*)\"(?: (?P<request_time>[\d.]+))?",
    r"\A\S+ \S+ \S+ \[\d{2}/[A-Za-z]{3}/\d{4}:",
)
# Go zap JSON; a runtime crash is written raw to the same stream.
_ZAP = _json("zap", r"\A(?P<message>(?:panic|fatal error): " + _ANY + ")", {"level": "FATAL"})
_PINO = _json("pino", None)

FORMATS: dict[str, LogFormat] = {
    f.name: f for f in (_LOGBACK, _PYTHON, _ZAP, _PINO, _WINSTON, _NGINX_ERROR, _NGINX_ACCESS)
}

DEFAULT_SOURCES: list[Source] = [
    Source("orders-api", "logback", "orders-api.log"),
    Source("payments-service", "logback", "payments-service.log"),
    Source("inventory-worker", "python", "inventory-worker.log"),
    Source("billing-worker", "python", "billing-worker.log"),
    Source("api-gateway", "zap", "api-gateway.log"),
    Source("web-bff", "pino", "web-bff.log"),
    Source("notifications", "winston", "notifications.log"),
    Source("edge-nginx", "nginx_error", "edge-nginx.log"),
]


class MultilineJoiner:
    """Joins the physical lines of one tailed file into events, as Fluent Bit's regex multiline parser."""

    __slots__ = ("_start", "_buf", "_bytes", "_last", "flush_after_s", "max_lines", "max_bytes")

    def __init__(
        self, fmt: LogFormat, flush_after_s: float = 0.5, max_lines: int = 500, max_bytes: int = 256 * 1024
    ) -> None:
        self._start = fmt._start_match
        self._buf: list[str] = []
        self._bytes = 0
        self._last = 0.0
        self.flush_after_s = flush_after_s
        self.max_lines = max_lines
        self.max_bytes = max_bytes

    @property
    def pending(self) -> bool:
        return bool(self._buf)

    def feed(self, line: str, now: float) -> list[str]:
        buf = self._buf
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


def parse_event(fmt: LogFormat, text: str, *, service: str, host: str | None, ingested: str) -> dict:
    """The record Fluent Bit's parser filter + modify filter + kinesis time_key would produce."""
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
            rec = {k: v for k, v in m.groupdict().items() if v is not None}
    if rec is None and fmt._fallback_match is not None:
        m = fmt._fallback_match(text)
        if m is not None:
            rec = {k: v for k, v in m.groupdict().items() if v is not None}
    if rec is None:
        rec = {"log": text}  # the parser filter failed; reserve_data keeps the raw line
    if "service" not in rec:
        rec["service"] = service
    if host is not None and "host" not in rec:
        rec["host"] = host
    for key, value in fmt.defaults.items():
        if key not in rec:
            rec[key] = value
    rec["@ingested"] = ingested
    return rec


def to_kinesis_data(record: dict) -> bytes:
    return orjson.dumps(record) + b"\n"


__all__ = [
    "LogFormat",
    "Source",
    "FORMATS",
    "DEFAULT_SOURCES",
    "MultilineJoiner",
    "parse_event",
    "to_kinesis_data",
]
