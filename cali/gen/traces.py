"""Real-looking stack traces for Java, Python, Go and Node.js, built from frame tables."""

from __future__ import annotations

import random

Frame = tuple[str, str, int]  # (qualified function, file, line)

SPRING_WEB: list[Frame] = [
    ("org.springframework.web.servlet.FrameworkServlet.processRequest", "FrameworkServlet.java", 1014),
    ("org.springframework.web.servlet.FrameworkServlet.doPost", "FrameworkServlet.java", 914),
    ("jakarta.servlet.http.HttpServlet.service", "HttpServlet.java", 590),
    ("org.springframework.web.servlet.FrameworkServlet.service", "FrameworkServlet.java", 885),
    ("org.apache.catalina.core.ApplicationFilterChain.internalDoFilter", "ApplicationFilterChain.java", 205),
    ("org.apache.catalina.core.ApplicationFilterChain.doFilter", "ApplicationFilterChain.java", 149),
    ("org.apache.tomcat.util.net.NioEndpoint$SocketProcessor.doRun", "NioEndpoint.java", 1744),
    ("org.apache.tomcat.util.threads.ThreadPoolExecutor.runWorker", "ThreadPoolExecutor.java", 1191),
    ("java.base/java.lang.Thread.run", "Thread.java", 1583),
]
HIKARI: list[Frame] = [
    ("com.zaxxer.hikari.pool.HikariPool.createTimeoutException", "HikariPool.java", 696),
    ("com.zaxxer.hikari.pool.HikariPool.getConnection", "HikariPool.java", 181),
    ("com.zaxxer.hikari.pool.HikariPool.getConnection", "HikariPool.java", 146),
    ("com.zaxxer.hikari.HikariDataSource.getConnection", "HikariDataSource.java", 100),
    (
        "org.hibernate.engine.jdbc.connections.internal.DatasourceConnectionProviderImpl.getConnection",
        "DatasourceConnectionProviderImpl.java",
        122,
    ),
]
HIBERNATE: list[Frame] = [
    (
        "org.hibernate.exception.internal.SQLStateConversionDelegate.convert",
        "SQLStateConversionDelegate.java",
        98,
    ),
    (
        "org.hibernate.exception.internal.StandardSQLExceptionConverter.convert",
        "StandardSQLExceptionConverter.java",
        56,
    ),
    (
        "org.hibernate.resource.jdbc.internal.LogicalConnectionManagedImpl.acquireConnectionIfNeeded",
        "LogicalConnectionManagedImpl.java",
        108,
    ),
    ("org.hibernate.internal.SessionImpl.beginTransaction", "SessionImpl.java", 1520),
]
SSL: list[Frame] = [
    ("java.base/sun.security.ssl.Alert.createSSLException", "Alert.java", 130),
    ("java.base/sun.security.ssl.TransportContext.fatal", "TransportContext.java", 378),
    (
        "java.base/sun.security.ssl.CertificateMessage$T13CertificateConsumer.checkServerCerts",
        "CertificateMessage.java",
        1357,
    ),
    ("java.base/sun.security.ssl.SSLSocketImpl.startHandshake", "SSLSocketImpl.java", 448),
    ("java.base/sun.net.www.protocol.https.HttpsClient.afterConnect", "HttpsClient.java", 589),
]
CERTPATH: list[Frame] = [
    ("java.base/sun.security.validator.PKIXValidator.doBuild", "PKIXValidator.java", 388),
    ("java.base/sun.security.validator.PKIXValidator.engineValidate", "PKIXValidator.java", 271),
    ("java.base/sun.security.validator.Validator.validate", "Validator.java", 256),
]
JDK_COLLECTIONS: list[Frame] = [
    ("java.base/java.util.Arrays.copyOf", "Arrays.java", 3537),
    ("java.base/java.util.ArrayList.grow", "ArrayList.java", 237),
    ("java.base/java.util.ArrayList.add", "ArrayList.java", 455),
    (
        "com.fasterxml.jackson.databind.deser.std.CollectionDeserializer._deserializeFromArray",
        "CollectionDeserializer.java",
        359,
    ),
]


def app_frames(rng: random.Random, package: str, classes: list[str], n: int) -> list[Frame]:
    out = []
    for _ in range(n):
        cls = rng.choice(classes)
        method = rng.choice(["handle", "process", "execute", "apply", "load", "submit", "doCall", "invoke"])
        out.append((f"{package}.{cls}.{method}", f"{cls.split('$')[0]}.java", rng.randint(30, 420)))
    return out


def java_trace(
    chain: list[tuple[str, list[Frame]]],
    *,
    suppressed: tuple[str, list[Frame]] | None = None,
    common_tail: int = 0,
) -> list[str]:
    """chain[0] is the thrown exception ("Ex: msg", frames); each next one is its `Caused by:`."""
    lines: list[str] = []
    for i, (head, frames) in enumerate(chain):
        lines.append(head if i == 0 else f"Caused by: {head}")
        shown = frames if i == 0 or not common_tail else frames[:-common_tail] or frames[:1]
        lines.extend(f"\tat {fn}({file}:{ln})" for fn, file, ln in shown)
        if i > 0 and common_tail:
            lines.append(f"\t... {len(frames) - len(shown)} more")
        if i == 0 and suppressed is not None:
            shead, sframes = suppressed
            lines.append(f"\tSuppressed: {shead}")
            lines.extend(f"\t\tat {fn}({file}:{ln})" for fn, file, ln in sframes)
            lines.append(f"\t\t... {len(frames)} more")
    return lines


PyFrame = tuple[str, int, str, str]  # (file, line, function, source)


def python_traceback(parts: list[tuple[list[PyFrame], list[str]]], link: str = "context") -> list[str]:
    """parts[i] = (frames, exception lines); joined by the chained-exception banners, blank lines included."""
    banner = (
        "During handling of the above exception, another exception occurred:"
        if link == "context"
        else "The above exception was the direct cause of the following exception:"
    )
    lines: list[str] = []
    for i, (frames, exc_lines) in enumerate(parts):
        if i:
            lines.extend(["", banner, ""])
        lines.append("Traceback (most recent call last):")
        for file, ln, fn, src in frames:
            lines.append(f'  File "{file}", line {ln}, in {fn}')
            lines.append(f"    {src}")
        lines.extend(exc_lines)
    return lines


GoFrame = tuple[str, str, int, str]  # (function with args, file, line, pc offset)


def go_panic(rng: random.Random, message: str, frames: list[GoFrame], *, signal: bool = True) -> list[str]:
    gid = rng.randint(18, 9000)
    lines = [f"panic: {message}"]
    if signal:
        pc = rng.randint(0x400000, 0x9FFFFF)
        lines.append(f"[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x{pc:x}]")
    lines += ["", f"goroutine {gid} [running]:"]
    for fn, file, ln, off in frames:
        lines.append(fn)
        lines.append(f"\t{file}:{ln} {off}")
    lines.append(f"created by net/http.(*Server).Serve in goroutine {rng.randint(1, 12)}")
    lines.append("\t/usr/local/go/src/net/http/server.go:3285 +0x4b4")
    lines.append("")
    lines.append(f"goroutine 1 [IO wait, {rng.randint(1, 40)} minutes]:")
    lines.append("internal/poll.runtime_pollWait(0x7f3c1a2b4e28, 0x72)")
    lines.append("\t/usr/local/go/src/runtime/netpoll.go:351 +0x85")
    lines.append("exit status 2")
    return lines


def go_stacktrace(frames: list[GoFrame]) -> str:
    # zap's "stacktrace" field: function, then tab-indented file:line, no pc offsets.
    return "\n".join(f"{fn.split('(0x')[0].split('({')[0]}\n\t{file}:{ln}" for fn, file, ln, _ in frames)


NodeFrame = tuple[str, str]  # (function, "file:line:col")


def node_stack(head: str, frames: list[NodeFrame]) -> list[str]:
    return [head] + [f"    at {fn} ({loc})" if fn else f"    at {loc}" for fn, loc in frames]


def hexid(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"
