"""Scripted incidents: bursts of one failure kind (a taxonomy id) in one service, with real stack traces."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from cali.gen import traces as T
from cali.gen.services import SERVICES, Event, fill

Builder = Callable[[random.Random, Event], None]  # fills level/message/stack/fields/raw of the event


def _java_ids(rng: random.Random, ev: Event) -> None:
    ev.fields = {"trace_id": T.hexid(rng, 32), "span_id": T.hexid(rng, 16)}


def db_pool_exhausted(rng: random.Random, ev: Event) -> None:
    _java_ids(rng, ev)
    waiting = rng.randint(3, 120)
    timeout = rng.choice([30000, 30000, 10000])
    app = T.app_frames(
        rng, "com.acme.orders", ["OrderService", "OrderController", "OrderRepository$Proxy"], 3
    )
    ev.level, ev.fields["logger"] = "ERROR", "c.a.orders.OrderController"
    ev.message = fill("Failed to place order {order}: Could not open JPA EntityManager for transaction", rng)
    hikari = (
        f"java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, request "
        f"timed out after {timeout + rng.randint(0, 9)}ms (total=20, active=20, idle=0, waiting={waiting})"
    )
    ev.stack = T.java_trace(
        [
            (
                "org.springframework.transaction.CannotCreateTransactionException: "
                "Could not open JPA EntityManager for transaction",
                app + T.SPRING_WEB,
            ),
            (
                "org.hibernate.exception.JDBCConnectionException: Unable to acquire JDBC Connection "
                "[HikariPool-1 - Connection is not available]",
                T.HIBERNATE + app + T.SPRING_WEB,
            ),
            (hikari, T.HIKARI + T.HIBERNATE + app + T.SPRING_WEB),
        ],
        common_tail=len(T.SPRING_WEB) + len(app),
    )


def out_of_memory(rng: random.Random, ev: Event) -> None:
    _java_ids(rng, ev)
    ev.level, ev.fields["logger"] = "ERROR", "o.a.c.c.C.[.[.[/].[dispatcherServlet]"
    what = rng.choice(["Java heap space", "Java heap space", "GC overhead limit exceeded"])
    ev.fields["thread"] = f"http-nio-8080-exec-{rng.randint(1, 200)}"
    ev.message = (
        "Servlet.service() for servlet [dispatcherServlet] in context with path [] threw exception "
        f"[Handler dispatch failed: java.lang.OutOfMemoryError: {what}]"
    )
    app = T.app_frames(
        rng, "com.acme.payments", ["LedgerService", "ReconciliationJob", "ChargeController"], 3
    )
    ev.stack = T.java_trace(
        [
            (
                f"java.lang.OutOfMemoryError: {ev.message.rsplit(': ', 1)[1].rstrip(']')}",
                T.JDK_COLLECTIONS + app + T.SPRING_WEB,
            ),
        ]
    )


def tls_certificate(rng: random.Random, ev: Event) -> None:
    _java_ids(rng, ev)
    host = rng.choice(["psp.partner.example", "api.acquirer.example", "fx-rates.partner.example"])
    ev.level, ev.fields["logger"] = "ERROR", "c.a.payments.psp.PspClient"
    ev.message = fill(
        'Charge {charge} failed: I/O error on POST request for "https://' + host + '/v1/charges"', rng
    )
    app = T.app_frames(rng, "com.acme.payments.psp", ["PspClient", "RetryingPspClient"], 2)
    pkix = (
        "PKIX path building failed: sun.security.provider.certpath.SunCertPathBuilderException: unable to "
        "find valid certification path to requested target"
    )
    ev.stack = T.java_trace(
        [
            (
                f"org.springframework.web.client.ResourceAccessException: I/O error on POST request for "
                f'"https://{host}/v1/charges": {pkix}',
                app + T.SPRING_WEB,
            ),
            (f"javax.net.ssl.SSLHandshakeException: {pkix}", T.SSL + app + T.SPRING_WEB),
            (f"sun.security.validator.ValidatorException: {pkix}", T.CERTPATH + T.SSL + app + T.SPRING_WEB),
            (
                "sun.security.provider.certpath.SunCertPathBuilderException: "
                "unable to find valid certification path to requested target",
                T.CERTPATH[:1] + T.SSL + app + T.SPRING_WEB,
            ),
        ],
        suppressed=("java.net.SocketException: Connection reset", T.SSL[3:]),
        common_tail=len(T.SPRING_WEB),
    )


def disk_full(rng: random.Random, ev: Event) -> None:
    snap = f"/var/lib/inventory/snap-{rng.randint(1, 999999):06d}.json"
    ev.level, ev.fields["logger"] = "ERROR", "inventory.snapshot"
    ev.message = f"failed to write snapshot {snap} for warehouse {rng.choice(['AMS1', 'FRA2', 'DUB1'])}"
    ev.stack = T.python_traceback(
        [
            (
                [("/app/inventory/snapshot.py", 88, "write", "fh.write(payload)")],
                ["OSError: [Errno 28] No space left on device"],
            ),
            (
                [
                    ("/app/inventory/sync.py", 142, "run_batch", "self.snapshots.write(batch)"),
                    ("/app/inventory/snapshot.py", 91, "write", "fh.close()"),
                ],
                [f"OSError: [Errno 28] No space left on device: '{snap}'"],
            ),
        ],
        link="context",
    )


def db_deadlock(rng: random.Random, ev: Event) -> None:
    p1, p2 = rng.randint(1000, 9999), rng.randint(1000, 9999)
    tx = rng.randint(10**6, 10**7)
    tx2 = tx + rng.randint(1, 50)
    inv = f"INV-2026-{rng.randint(10000, 99999)}"
    ev.level, ev.fields["logger"] = "ERROR", "billing.invoices"
    ev.message = f"could not finalise invoice {inv}"
    detail = [
        f"DETAIL:  Process {p1} waits for ShareLock on transaction {tx}; blocked by process {p2}.",
        f"Process {p2} waits for ShareLock on transaction {tx2}; blocked by process {p1}.",
        "HINT:  See server log for query details.",
    ]
    frames = [
        ("/app/billing/invoices.py", 211, "finalise", "session.flush()"),
        (
            "/usr/local/lib/python3.12/site-packages/sqlalchemy/orm/session.py",
            4331,
            "flush",
            "self._flush(objects)",
        ),
        (
            "/usr/local/lib/python3.12/site-packages/sqlalchemy/engine/default.py",
            941,
            "do_execute",
            "cursor.execute(statement, parameters)",
        ),
    ]
    ev.stack = T.python_traceback(
        [
            (frames[2:], ["psycopg2.errors.DeadlockDetected: deadlock detected", *detail]),
            (
                frames,
                [
                    "sqlalchemy.exc.OperationalError: (psycopg2.errors.DeadlockDetected) deadlock detected",
                    *detail[:2],
                    "[SQL: UPDATE invoices SET status=%(status)s WHERE invoices.id = %(id)s]",
                    f"[parameters: {{'status': 'FINAL', 'id': {rng.randint(1, 10**6)}}}]",
                ],
            ),
        ],
        link="cause",
    )


_GO_FRAMES = [
    (
        "main.(*Handler).ServeHTTP(0xc0001a2000, {0x9a3c40, 0xc000512380}, 0xc0004f6000)",
        "/app/proxy/handler.go",
        88,
        "+0x1d",
    ),
    (
        "net/http.HandlerFunc.ServeHTTP(0x0?, {0x9a3c40?, 0xc000512380?}, 0xc0004f6000?)",
        "/usr/local/go/src/net/http/server.go",
        2220,
        "+0x29",
    ),
    (
        "github.com/acme/gateway/middleware.Tracing.func1({0x9a3c40, 0xc000512380}, 0xc0004f6000)",
        "/app/middleware/tracing.go",
        41,
        "+0x2c6",
    ),
    (
        "net/http.serverHandler.ServeHTTP({0xc0001f4000?}, {0x9a3c40?, 0xc000512380?}, 0x6?)",
        "/usr/local/go/src/net/http/server.go",
        3210,
        "+0x8e",
    ),
    (
        "net/http.(*conn).serve(0xc00022e000, {0x9a4a18, 0xc0001e6000})",
        "/usr/local/go/src/net/http/server.go",
        2092,
        "+0x5d0",
    ),
]


def nil_pointer_panic(rng: random.Random, ev: Event) -> None:
    ev.level = "FATAL"
    ev.raw = T.go_panic(rng, "runtime error: invalid memory address or nil pointer dereference", _GO_FRAMES)
    ev.message = ev.raw[0]


def upstream_refused(rng: random.Random, ev: Event) -> None:
    ip = f"10.0.2.{rng.randint(2, 60)}"
    ev.level, ev.message = "ERROR", "upstream request failed"
    ev.fields = {
        "caller": "proxy/upstream.go:131",
        "host": rng.choice(SERVICES["api-gateway"].hosts),
        "upstream": f"http://{ip}:8080",
        "path": rng.choice(["/api/orders", "/api/cart"]),
        "error": f"dial tcp {ip}:8080: connect: connection refused",
        "trace_id": T.hexid(rng, 32),
        "attempt": rng.randint(1, 3),
    }
    ev.stack = T.go_stacktrace(_GO_FRAMES[:3]).split("\n")


def upstream_timeout(rng: random.Random, ev: Event) -> None:
    ev.level = "ERROR"
    ip = f"10.0.2.{rng.randint(2, 60)}"
    path = rng.choice(["/api/orders", "/api/payments/charge", "/api/catalog/search"])
    ev.message = (
        f"upstream timed out (110: Connection timed out) while reading response header from upstream, "
        f"client: 10.0.{rng.randint(0, 9)}.{rng.randint(2, 254)}, server: shop.example.com, request: "
        f'"POST {path}?id={rng.randint(1, 10**6)} HTTP/1.1", upstream: "http://{ip}:8080{path}", '
        'host: "shop.example.com"'
    )
    ev.fields = {"connection_id": rng.randint(1000, 10**6), "pid": rng.choice([31, 32, 33, 34])}


def rate_limited(rng: random.Random, ev: Event) -> None:
    ev.level = "ERROR"
    ev.message = fill(
        "failed to send notification {ntf} to user {user}: Request failed with status code 429", rng
    )
    ev.stack = T.node_stack(
        "AxiosError: Request failed with status code 429",
        [
            ("settle", "/app/node_modules/axios/dist/node/axios.cjs:2019:12"),
            ("IncomingMessage.handleStreamEnd", "/app/node_modules/axios/dist/node/axios.cjs:3135:11"),
            ("IncomingMessage.emit", "node:events:531:35"),
            ("endReadableNT", "node:internal/streams/readable:1696:12"),
            ("process.processTicksAndRejections", "node:internal/process/task_queues:82:21"),
            ("async EmailChannel.send", "/app/src/channels/email.js:48:7"),
            ("async Dispatcher.dispatch", "/app/src/dispatcher.js:112:5"),
        ],
    )


def dns_failure(rng: random.Random, ev: Event) -> None:
    name = rng.choice(["catalog.internal", "pricing.svc.cluster.local", "recs.internal"])
    ev.level, ev.message = "ERROR", f"upstream call to {name} failed"
    stack = "\n".join(
        T.node_stack(
            f"Error: getaddrinfo ENOTFOUND {name}",
            [
                ("GetAddrInfoReqWrap.onlookupall [as oncomplete]", "node:dns:120:26"),
                ("async CatalogClient.fetchProduct", "/app/src/clients/catalog.js:37:18"),
                ("async productHandler", "/app/src/routes/product.js:22:21"),
            ],
        )
    )
    ev.fields = {
        "pid": 1,
        "host": rng.choice(SERVICES["web-bff"].hosts),
        "req_id": f"req-{rng.randint(1, 10**7)}",
        "err": {
            "type": "Error",
            "message": f"getaddrinfo ENOTFOUND {name}",
            "stack": stack,
            "errno": -3008,
            "code": "ENOTFOUND",
            "syscall": "getaddrinfo",
            "hostname": name,
        },
    }


def undefined_property(rng: random.Random, ev: Event) -> None:
    prop = rng.choice(["price", "id", "items", "currency"])
    msg = f"Cannot read properties of undefined (reading '{prop}')"
    ev.level, ev.message = "ERROR", "request errored"
    stack = "\n".join(
        T.node_stack(
            f"TypeError: {msg}",
            [
                ("toViewModel", f"/app/src/views/product.js:{rng.randint(10, 90)}:31"),
                ("Array.map", "<anonymous>"),
                ("productHandler", "/app/src/routes/product.js:29:33"),
                ("process.processTicksAndRejections", "node:internal/process/task_queues:95:5"),
            ],
        )
    )
    ev.fields = {
        "pid": 1,
        "host": rng.choice(SERVICES["web-bff"].hosts),
        "req_id": f"req-{rng.randint(1, 10**7)}",
        "err": {"type": "TypeError", "message": msg, "stack": stack},
    }


@dataclass(frozen=True)
class IncidentKind:
    kind: str  # taxonomy id
    service: str
    build: Builder
    burst: tuple[int, int]  # events per incident, min..max
    spread_s: float  # the burst is spread over this many seconds


KINDS: list[IncidentKind] = [
    IncidentKind("db-pool-exhausted", "orders-api", db_pool_exhausted, (15, 40), 8.0),
    IncidentKind("upstream-timeout", "edge-nginx", upstream_timeout, (20, 50), 6.0),
    IncidentKind("disk-full", "inventory-worker", disk_full, (8, 20), 8.0),
    IncidentKind("null-reference", "api-gateway", nil_pointer_panic, (3, 6), 9.0),
    IncidentKind("tls-certificate", "payments-service", tls_certificate, (10, 30), 8.0),
    IncidentKind("rate-limited", "notifications", rate_limited, (15, 40), 6.0),
    IncidentKind("dns-failure", "web-bff", dns_failure, (10, 30), 6.0),
    IncidentKind("db-deadlock", "billing-worker", db_deadlock, (5, 15), 8.0),
    IncidentKind("upstream-connection-refused", "api-gateway", upstream_refused, (15, 40), 6.0),
    IncidentKind("out-of-memory", "payments-service", out_of_memory, (4, 10), 8.0),
    IncidentKind("null-reference", "web-bff", undefined_property, (10, 25), 6.0),
]
