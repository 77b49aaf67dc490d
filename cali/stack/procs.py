"""Background processes owned by the stack: start in their own session, pid files, stop by pid."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class StackError(RuntimeError):
    """A local service failed to start or answer; the message names its log file."""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    argv: list[str]
    port: int
    marker: str  # a string in the process's command line: a recycled pid never matches it
    env: dict[str, str]
    cwd: Path


def pid_path(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.pid"


def log_path(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.log"


def read_pid(state_dir: Path, name: str) -> dict | None:
    p = pid_path(state_dir, name)
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def is_ours_alive(info: dict | None) -> bool:
    """True when the recorded pid still runs the process we started (checked via its command line)."""
    if not info:
        return False
    pid = int(info.get("pid", 0))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    proc = Path(f"/proc/{pid}")
    if not proc.exists():  # no procfs (macOS): trust the pid
        return True
    try:
        if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False  # exited, not yet reaped
        text = proc.joinpath("cmdline").read_bytes().replace(b"\x00", b" ").decode("utf-8", "replace")
    except (OSError, IndexError):
        return False
    # Right after a vfork-exec the new image's cmdline can read empty for a moment.
    return not text.strip() or info.get("marker", "") in text


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS just had free on loopback (for tests and benchmarks that run their own servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def start(spec: ServiceSpec, state_dir: Path) -> dict:
    """Starts the process detached (own session) with stdout/stderr to <state>/<name>.log."""
    state_dir.mkdir(parents=True, exist_ok=True)
    if port_open(spec.port):
        raise StackError(f"{spec.name}: port 127.0.0.1:{spec.port} is already in use by another process "
                         f"(not ours: no live pid in {pid_path(state_dir, spec.name)}); stop it or pick "
                         f"another port")
    log = log_path(state_dir, spec.name)
    with open(log, "ab") as out:
        out.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%S')} start: {' '.join(spec.argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(spec.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=spec.cwd, env={**os.environ, **spec.env}, start_new_session=True)
    info = {"pid": proc.pid, "port": spec.port, "marker": spec.marker, "argv": spec.argv,
            "log": str(log), "started": time.time()}
    tmp = pid_path(state_dir, spec.name).with_suffix(".pid.tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, pid_path(state_dir, spec.name))
    return info


def wait_healthy(name: str, info: dict, check: Callable[[], str | None], timeout_s: float) -> None:
    """Polls `check` (None = healthy, else the reason) until healthy, the process dies, or timeout."""
    deadline = time.monotonic() + timeout_s
    reason = "not checked yet"
    while time.monotonic() < deadline:
        if not is_ours_alive(info):
            raise StackError(f"{name} exited during start-up; see its log {info.get('log')}:\n"
                             f"{tail(Path(info.get('log', '')))}")
        reason = check()
        if reason is None:
            return
        time.sleep(0.1)
    raise StackError(f"{name} did not become healthy within {timeout_s:.0f}s ({reason}); "
                     f"see its log {info.get('log')}:\n{tail(Path(info.get('log', '')))}")


def stop(state_dir: Path, name: str, grace_s: float = 5.0) -> dict:
    """SIGTERM, wait, SIGKILL: only the pid recorded in our pid file, and only if it is still ours."""
    info = read_pid(state_dir, name)
    result = {"service": name, "pid": info.get("pid") if info else None, "stopped": False}
    if info and is_ours_alive(info):
        pid = int(info["pid"])
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and is_ours_alive(info):
            _reap(pid)
            time.sleep(0.05)
        if is_ours_alive(info):
            _signal(pid, signal.SIGKILL)
            result["killed"] = True
            for _ in range(40):
                _reap(pid)
                if not is_ours_alive(info):
                    break
                time.sleep(0.05)
        _reap(pid)
        result["stopped"] = True
    pid_path(state_dir, name).unlink(missing_ok=True)
    return result


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    # A child of this very process (tests start the stack in-process) stays a zombie until reaped.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
