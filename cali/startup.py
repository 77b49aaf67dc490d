"""Start-up failures as one line: which port or system failed, and the `cali` flag or variable that changes it."""

from __future__ import annotations

import errno
import re
import socket
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# How the systems we start say "that port is taken": Python/werkzeug/node, Ray's dashboard check,
# Ray Serve's proxy (measured with each one's port held by another socket).
_PORT_TAKEN = re.compile(r"already in use|already occupied|failed to bind|EADDRINUSE", re.IGNORECASE)


class StartupError(RuntimeError):
    """A start-up failure; str() is the one line to print."""


@dataclass(frozen=True)
class Port:
    """A port a command is about to listen on, and how the user moves it."""

    system: str  # "Ray dashboard"
    port: int
    flag: str  # "--dashboard-port", or the variable that sets it
    host: str = "127.0.0.1"
    process: str = ""  # how the started program names itself in its errors ("kinesalite")

    def taken(self) -> str:
        return f"port {self.host}:{self.port} ({self.system}) is in use; free it or pick another with {self.flag}"


def port_in_use(host: str, port: int) -> bool:
    """True when something listens on host:port, so our server's bind would fail.

    Bind, not connect: a socket that listens but never accepts, or accepts and never answers, holds the
    port just the same. SO_REUSEADDR as the servers set it, so a TIME_WAIT left by the last run is free.
    """
    if port == 0:
        return False
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def preflight(ports: Iterable[Port]) -> None:
    """Raises StartupError naming every taken port, before anything is started."""
    taken = [p.taken() for p in ports if port_in_use(p.host, p.port)]
    if taken:
        raise StartupError("; ".join(taken))


def summary(exc: BaseException, limit: int = 200) -> str:
    """One line out of an exception whose text may hold a remote traceback (Ray) or a log tail."""
    lines = [ln.strip() for ln in _ANSI.sub("", str(exc)).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    # A Ray task error is the remote traceback; its last line is the remote exception.
    line = lines[-1] if lines[0].startswith("ray::") or "Traceback" in lines[0] else lines[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


@contextmanager
def starting(*ports: Port | None, system: str | None = None, hint: str = "") -> Iterator[None]:
    """Turns any failure inside into one StartupError line naming the port (and its flag) or the system.

    With several ports (a stack of two servers), the one the error names is blamed. Keyboard interrupts
    pass through: the caller's clean-up runs for them as for errors.
    """
    try:
        yield
    except StartupError:
        raise
    except Exception as exc:
        text = str(exc)
        port = _blamed([p for p in ports if p is not None], text)
        if port is not None and _PORT_TAKEN.search(text):
            raise StartupError(port.taken()) from exc
        what = system or (port.system if port else "start-up")
        where = f" ({port.system} on {port.host}:{port.port}, moved with {port.flag})" if port is not None else ""
        raise StartupError(f"{what}{where} failed to start: {summary(exc)}" + (f"; {hint}" if hint else "")) \
            from exc


def _blamed(ports: list[Port], text: str) -> Port | None:
    if len(ports) == 1:
        return ports[0]
    for p in ports:
        if (p.process and text.startswith(p.process)) or f":{p.port}" in text:
            return p
    return None


@contextmanager
def reported(command: str) -> Iterator[None]:
    """At a command's edge: a StartupError becomes one line on stderr and exit status 1."""
    try:
        yield
    except StartupError as exc:
        # Plain print, not rich: a console would wrap the line at the terminal's width.
        print(f"{command}: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def start_ray(settings: Any, started: ExitStack, *, dashboard_flag: str, num_cpus: float | None = None) -> None:
    """bootstrap.init_ray, failing as one line; a Ray it starts is shut down when `started` unwinds."""
    from cali import bootstrap, rayenv

    local = rayenv.is_local(settings.ray.address)
    port = Port("Ray dashboard", settings.ray.dashboard_port, dashboard_flag) if local else None
    if port is not None and not _joins_ray_start():
        preflight([port])
    started.callback(_ray_shutdown)  # registered first: ray.init can fail after starting processes
    where = "Ray" if local else f"Ray at {settings.ray.address or 'RAY_ADDRESS'}"
    with starting(port, system=where, hint="" if local else "check CALI_RAY__ADDRESS"):
        bootstrap.init_ray(settings, num_cpus=num_cpus)


def serve_port(config: dict[str, Any], port: int | None, flag: str) -> Port:
    return Port("analysis app, Ray Serve HTTP", port or config["http"].get("port", 8000), flag)


def start_serve(config: dict[str, Any], started: ExitStack, *, port: int | None, flag: str,
                args_update: dict[str, Any] | None = None, hint: str = "") -> str:
    """cali.serve.command.deploy, failing as one line; Serve is shut down when `started` unwinds."""
    from cali.serve.command import deploy

    http = serve_port(config, port, flag)
    preflight([http])
    started.callback(serve_shutdown)
    with starting(http, system="the analysis app on Ray Serve", hint=hint):
        return deploy(config, port=port, args_update=args_update)


def _joins_ray_start() -> bool:
    """ray.init() without an address joins a cluster that `ray start` recorded, whose dashboard is not ours."""
    from cali import rayenv

    rayenv.prepare(None)  # importing Ray below must not be its first import without the loopback env
    from ray._private.services import canonicalize_bootstrap_address

    try:
        return canonicalize_bootstrap_address(None) is not None
    except Exception:  # an unreadable record: ray.init() will say so itself
        return False


def _ray_shutdown() -> None:
    import ray

    ray.shutdown()


def serve_shutdown() -> None:
    import ray
    from ray import serve

    if ray.is_initialized():
        serve.shutdown()
