"""The simulated services: how each one prints a log line, and its steady background traffic."""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cali.gen.traces import hexid

_FMT = string.Formatter()


@dataclass
class Event:
    service: str
    ts_ms: int
    level: str  # TRACE/DEBUG/INFO/WARN/ERROR/FATAL
    message: str
    stack: list[str] | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    raw: list[str] | None = None  # printed as is (a Go crash dump), bypassing the logger
    kind: str | None = None  # the incident's taxonomy id, None for background traffic


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    format: str
    ecosystem: str
    hosts: tuple[str, ...]
    weight: float  # share of background traffic
    logger_names: tuple[str, ...] = ()


SERVICES: dict[str, ServiceSpec] = {
    s.name: s
    for s in (
        ServiceSpec(
            "orders-api",
            "logback",
            "java",
            ("orders-api-7f9c-2", "orders-api-7f9c-5", "orders-api-7f9c-9"),
            3.0,
            (
                "c.a.orders.OrderController",
                "c.a.orders.OrderService",
                "o.h.engine.jdbc.spi.SqlExceptionHelper",
                "c.a.orders.client.PaymentsClient",
            ),
        ),
        ServiceSpec(
            "payments-service",
            "logback",
            "java",
            ("payments-6d4b-1", "payments-6d4b-3"),
            2.0,
            ("c.a.payments.ChargeController", "c.a.payments.psp.PspClient", "c.a.payments.LedgerService"),
        ),
        ServiceSpec(
            "inventory-worker",
            "python",
            "python",
            ("ip-10-0-3-17", "ip-10-0-3-42"),
            1.5,
            ("inventory.sync", "inventory.snapshot", "inventory.kafka"),
        ),
        ServiceSpec(
            "billing-worker",
            "python",
            "python",
            ("ip-10-0-5-8", "ip-10-0-5-23"),
            1.0,
            ("billing.invoices", "billing.db", "billing.scheduler"),
        ),
        ServiceSpec("api-gateway", "zap", "go", ("gw-5c8d7-xk2lp", "gw-5c8d7-q9vzt", "gw-5c8d7-mm4rd"), 3.0),
        ServiceSpec("web-bff", "pino", "node", ("web-bff-84c6f-tr7wq", "web-bff-84c6f-9hx2d"), 2.0),
        ServiceSpec("notifications", "winston", "node", ("ip-10-0-7-101",), 1.0),
        ServiceSpec("edge-nginx", "nginx_error", "nginx", ("edge-1", "edge-2"), 0.6),
    )
}

_LEVEL_WORD = {
    "logback": {
        "TRACE": "TRACE",
        "DEBUG": "DEBUG",
        "INFO": "INFO",
        "WARN": "WARN",
        "ERROR": "ERROR",
        "FATAL": "ERROR",
    },
    "python": {
        "TRACE": "DEBUG",
        "DEBUG": "DEBUG",
        "INFO": "INFO",
        "WARN": "WARNING",
        "ERROR": "ERROR",
        "FATAL": "CRITICAL",
    },
    "zap": {
        "TRACE": "debug",
        "DEBUG": "debug",
        "INFO": "info",
        "WARN": "warn",
        "ERROR": "error",
        "FATAL": "fatal",
    },
    "pino": {"TRACE": 10, "DEBUG": 20, "INFO": 30, "WARN": 40, "ERROR": 50, "FATAL": 60},
    "winston": {
        "TRACE": "silly",
        "DEBUG": "debug",
        "INFO": "info",
        "WARN": "warn",
        "ERROR": "error",
        "FATAL": "error",
    },
    "nginx_error": {
        "TRACE": "debug",
        "DEBUG": "debug",
        "INFO": "info",
        "WARN": "warn",
        "ERROR": "error",
        "FATAL": "crit",
    },
}


def _utc(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


def render(spec: ServiceSpec, ev: Event, rng: random.Random) -> list[str]:
    """The physical lines this service's logger writes for one event."""
    if ev.raw is not None:
        return ev.raw
    fmt = spec.format
    word = _LEVEL_WORD[fmt][ev.level]
    dt = _utc(ev.ts_ms)
    ms = ev.ts_ms % 1000
    if fmt == "logback":
        trace = ev.fields.get("trace_id", "")
        span = ev.fields.get("span_id", "")
        thread = ev.fields.get("thread") or f"nio-8080-exec-{rng.randint(1, 10)}"
        logger = ev.fields.get("logger") or rng.choice(spec.logger_names)
        head = (
            f"{dt:%Y-%m-%d %H:%M:%S}.{ms:03d} {word:>5} [{spec.name},{trace},{span}] 1 --- "
            f"[{thread[-15:]:>15}] {logger:<40} : {ev.message}"
        )
        return [head, *(ev.stack or ())]
    if fmt == "python":
        logger = ev.fields.get("logger") or rng.choice(spec.logger_names)
        head = f"{dt:%Y-%m-%d %H:%M:%S},{ms:03d} {word} [{spec.name}] {logger}: {ev.message}"
        return [head, *(ev.stack or ())]
    if fmt == "winston":
        head = f"{dt:%Y-%m-%dT%H:%M:%S}.{ms:03d}Z [{spec.name}] {word}: {ev.message}"
        return [head, *(ev.stack or ())]
    if fmt == "nginx_error":
        conn = ev.fields.get("connection_id")
        pid = ev.fields.get("pid", 31)
        conn_part = f"*{conn} " if conn is not None else ""
        return [f"{dt:%Y/%m/%d %H:%M:%S} [{word}] {pid}#{pid}: {conn_part}{ev.message}"]
    if fmt == "zap":
        obj: dict[str, Any] = {
            "level": word,
            "ts": round(ev.ts_ms / 1000, 3),
            "caller": ev.fields.pop("caller", "proxy/handler.go:88"),
            "msg": ev.message,
            "service": spec.name,
            "host": ev.fields.pop("host", spec.hosts[0]),
        }
        obj.update(ev.fields)
        if ev.stack:
            obj["stacktrace"] = "\n".join(ev.stack)
        return [json.dumps(obj, separators=(",", ":"))]
    if fmt == "pino":
        obj = {
            "level": word,
            "time": ev.ts_ms,
            "pid": ev.fields.pop("pid", 1),
            "hostname": ev.fields.pop("host", spec.hosts[0]),
            "service": spec.name,
        }
        obj.update(ev.fields)
        obj["msg"] = ev.message
        return [json.dumps(obj, separators=(",", ":"))]
    raise ValueError(f"no renderer for format {fmt!r}")


# Background traffic: (level, template). Placeholders are filled by _VALUES below.
BACKGROUND: dict[str, list[tuple[str, str]]] = {
    "java": [
        ("INFO", "Order {order} created for customer {cust} total={amount} EUR items={n}"),
        ("INFO", "GET /api/orders/{order} -> 200 in {ms}ms"),
        ("INFO", "Charge {charge} authorised amount={amount} currency=EUR"),
        ("DEBUG", "Cache hit for product {sku} (age {ms}ms)"),
        ("DEBUG", "Binding parameter [1] as [BIGINT] - [{n}]"),
        ("INFO", "Published event OrderCreated id={uuid} partition={n}"),
        ("WARN", "Slow query took {ms2}ms: select o.* from orders o where o.customer_id=? limit ?"),
        ("WARN", "Retrying call to payments-service (attempt {attempt}/3) after {ms}ms"),
        ("WARN", "HikariPool-1 - Thread starvation or clock leap detected (housekeeper delta={ms2}ms)."),
    ],
    "python": [
        ("INFO", "synced {n} SKUs from warehouse {wh} in {sec}s"),
        ("INFO", "consumed batch offset={offset} partition={part} size={n}"),
        ("INFO", "invoice {inv} issued for account {acct} amount={amount}"),
        ("DEBUG", "snapshot {uuid} written ({kb} KiB)"),
        ("DEBUG", "scheduler tick: {n} jobs due"),
        ("WARN", "retrying warehouse API call in {sec}s (attempt {attempt} of 5)"),
        ("WARN", "config key INVENTORY_BATCH is deprecated, use SYNC_BATCH_SIZE"),
    ],
    "go": [
        ("INFO", "request completed"),
        ("INFO", "request completed"),
        ("DEBUG", "route matched"),
        ("INFO", "upstream health check passed"),
        ("WARN", "retrying upstream request"),
        ("WARN", "slow upstream response"),
    ],
    "node": [
        ("INFO", "request completed"),
        ("INFO", "rendered page /products/{sku} in {ms}ms"),
        ("DEBUG", "session {uuid} refreshed"),
        ("INFO", "notification {ntf} queued for user {user} channel=email"),
        ("INFO", "notification {ntf} delivered in {ms}ms"),
        ("WARN", "DeprecationWarning: Buffer() is deprecated due to security and usability issues"),
        ("WARN", "retrying SMTP send for {ntf} (attempt {attempt})"),
    ],
    "nginx": [
        ("INFO", "client {ip} closed keepalive connection"),
        ("INFO", "client {ip} closed keepalive connection"),
        (
            "WARN",
            "an upstream response is buffered to a temporary file /var/cache/nginx/proxy_temp/{n}/00/"
            "00000{n} while reading upstream, client: {ip}, server: shop.example.com, request: "
            '"GET /api/catalog?page={attempt} HTTP/1.1", upstream: "http://10.0.2.{octet}:8080/api/catalog"',
        ),
    ],
}

_VALUES = {
    "order": lambda r: f"ORD-{r.randint(100000, 999999)}",
    "cust": lambda r: f"C{r.randint(10000, 99999)}",
    "amount": lambda r: f"{r.randint(5, 900)}.{r.randint(0, 99):02d}",
    "n": lambda r: str(r.randint(1, 500)),
    "ms": lambda r: str(r.randint(2, 400)),
    "ms2": lambda r: str(r.randint(1200, 9000)),
    "charge": lambda r: f"ch_{hexid(r, 16)}",
    "sku": lambda r: f"SKU-{r.randint(1000, 99999)}",
    "uuid": lambda r: f"{hexid(r, 8)}-{hexid(r, 4)}-4{hexid(r, 3)}-a{hexid(r, 3)}-{hexid(r, 12)}",
    "attempt": lambda r: str(r.randint(1, 3)),
    "wh": lambda r: r.choice(["AMS1", "FRA2", "DUB1", "WAW3"]),
    "sec": lambda r: f"{r.uniform(0.1, 9.9):.2f}",
    "offset": lambda r: str(r.randint(10**6, 10**8)),
    "part": lambda r: str(r.randint(0, 11)),
    "inv": lambda r: f"INV-2026-{r.randint(10000, 99999)}",
    "acct": lambda r: f"acct_{hexid(r, 10)}",
    "kb": lambda r: str(r.randint(12, 4096)),
    "ntf": lambda r: f"ntf_{hexid(r, 12)}",
    "user": lambda r: f"u{r.randint(1000, 999999)}",
    "ip": lambda r: f"10.0.{r.randint(0, 9)}.{r.randint(2, 254)}",
    "octet": lambda r: str(r.randint(2, 60)),
}
_FIELDS_CACHE: dict[str, tuple[str, ...]] = {}


def fill(template: str, rng: random.Random) -> str:
    names = _FIELDS_CACHE.get(template)
    if names is None:
        names = tuple(dict.fromkeys(f for _, f, _, _ in _FMT.parse(template) if f))
        _FIELDS_CACHE[template] = names
    if not names:
        return template
    return template.format(**{n: _VALUES[n](rng) for n in names})


def background_event(spec: ServiceSpec, ts_ms: int, rng: random.Random, warn_share: float) -> Event:
    table = BACKGROUND[spec.ecosystem]
    quiet = [t for t in table if t[0] != "WARN"]
    noisy = [t for t in table if t[0] == "WARN"]
    level, tpl = rng.choice(noisy if rng.random() < warn_share else quiet)
    ev = Event(spec.name, ts_ms, level, fill(tpl, rng))
    host = rng.choice(spec.hosts)
    if spec.format == "logback":
        ev.fields = {"trace_id": hexid(rng, 32), "span_id": hexid(rng, 16)} if rng.random() < 0.8 else {}
    elif spec.format == "zap":
        path = rng.choice(["/api/orders", "/api/catalog", "/api/cart", "/api/payments/charge", "/healthz"])
        ev.fields = {
            "caller": rng.choice(["proxy/handler.go:142", "proxy/upstream.go:77", "router/match.go:51"]),
            "host": host,
            "method": rng.choice(["GET", "GET", "POST"]),
            "path": path,
            "status": 200 if level != "WARN" else 200,
            "duration_ms": rng.randint(1, 900),
            "trace_id": hexid(rng, 32),
        }
        if level == "WARN":
            ev.fields["attempt"] = rng.randint(1, 3)
    elif spec.format == "pino":
        ev.fields = {
            "pid": 1,
            "host": host,
            "req_id": f"req-{rng.randint(1, 10**7)}",
            "responseTime": rng.randint(1, 800),
        }
    elif spec.format == "nginx_error":
        ev.fields = {"connection_id": rng.randint(1000, 10**6)}
    return ev
