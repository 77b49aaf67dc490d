"""Start-up failures become one line naming the port and its flag; the local Ray's environment; health
checks under one deadline."""

from __future__ import annotations

import socket
import threading
import types

import pytest

from cali import rayenv
from cali.core.ports import Health
from cali.service.health import Check, run_checks
from cali.startup import Port, StartupError, port_in_use, preflight, reported, starting, summary

DASH = Port("Ray dashboard", 8265, "--dashboard-port")
KIN = Port("kinesalite, Kinesis", 4567, "--kinesis-port", process="kinesalite")
MOTO = Port("moto, S3/DynamoDB/Secrets Manager", 5055, "--aws-port", process="moto")


@pytest.fixture
def listening():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield s.getsockname()[1]


def test_a_listening_port_is_in_use_and_a_closed_one_is_not(listening):
    assert port_in_use("127.0.0.1", listening)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert not port_in_use("127.0.0.1", closed)
    assert not port_in_use("127.0.0.1", 0)  # 0 asks the OS for a free port


def test_preflight_names_every_taken_port_and_its_flag_on_one_line(listening):
    with socket.socket() as s2:
        s2.bind(("127.0.0.1", 0))
        s2.listen(1)
        ports = [Port("local Slack receiver", listening, "--slack-port"),
                 Port("Ray dashboard", s2.getsockname()[1], "--dashboard-port")]
        with pytest.raises(StartupError) as err:
            preflight(ports)
    line = str(err.value)
    assert "\n" not in line
    for p in ports:
        assert f"127.0.0.1:{p.port}" in line and p.flag in line


def test_free_ports_pass_preflight():
    preflight([Port("x", 0, "--x")])


# (case, ports, exception text, what the line must say, what it must not)
CASES = [
    ("ray dashboard taken", [DASH],
     "Failed to bind to 127.0.0.1:8265 because it's already occupied. You can use `ray start --dashboard-port "
     "...` or `ray.init(dashboard_port=...)` to select a different port.",
     ["127.0.0.1:8265", "--dashboard-port", "in use"], ["ray start", "ray.init"]),
    ("serve proxy taken (a remote traceback)", [Port("analysis app", 8000, "--serve-port")],
     "\x1b[36mray::ProxyActor.ready()\x1b[39m (pid=1, ip=127.0.0.1)\n  File \"proxy.py\", line 1810, in ready\n"
     "    raise e from None\nRuntimeError: Failed to bind to address '127.0.0.1:8000'.",
     ["127.0.0.1:8000", "--serve-port"], ["File", "\x1b"]),
    ("moto taken after kinesalite started (a log tail)", [KIN, MOTO],
     "moto exited during start-up; see its log /s/moto.log:\nTraceback (most recent call last):\n"
     "OSError: [Errno 98] Address already in use",
     ["127.0.0.1:5055", "--aws-port"], ["4567", "Traceback"]),
    ("kinesalite's own port check", [KIN, MOTO],
     "kinesalite: port 127.0.0.1:4567 is already in use by another process (not ours)",
     ["127.0.0.1:4567", "--kinesis-port"], ["--aws-port"]),
    ("something else fails", [DASH],
     "Timed out waiting for the GCS\nmore detail",
     ["Ray", "127.0.0.1:8265", "--dashboard-port", "failed to start: Timed out waiting for the GCS"], ["more detail"]),
]


@pytest.mark.parametrize(("case", "ports", "text", "says", "never"), CASES, ids=[c[0] for c in CASES])
def test_starting_turns_a_failure_into_one_line(case, ports, text, says, never):
    with pytest.raises(StartupError) as err, starting(*ports, system="Ray"):
        raise RuntimeError(text)
    line = str(err.value)
    assert "\n" not in line, line
    for s in says:
        assert s in line, (s, line)
    for s in never:
        assert s not in line, (s, line)


def test_starting_lets_interrupts_and_its_own_errors_through():
    with pytest.raises(KeyboardInterrupt), starting(DASH):
        raise KeyboardInterrupt
    with pytest.raises(StartupError, match="^as it was$"), starting(DASH):
        raise StartupError("as it was")


def test_a_failure_that_names_no_port_names_the_system_and_the_hint():
    with pytest.raises(StartupError) as err, starting(None, system="the pipeline actors", hint="see the dashboard"):
        raise ValueError("actor died")
    assert str(err.value) == "the pipeline actors failed to start: actor died; see the dashboard"


def test_summary_is_short_and_plain():
    assert summary(RuntimeError("\x1b[31m" + "x" * 500)) == "x" * 199 + "…"
    assert summary(RuntimeError("")) == "RuntimeError"


def test_reported_prints_one_line_to_stderr_and_exits_1(capsys):
    with pytest.raises(SystemExit) as exit_, reported("cali demo"):
        raise StartupError("port 127.0.0.1:5066 (local Slack receiver) is in use")
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err == "cali demo: port 127.0.0.1:5066 (local Slack receiver) is in use\n"


# -- the local Ray's environment -------------------------------------------------------------------------------
def test_prepare_sets_loopback_and_token_auth_for_a_local_ray_only():
    env: dict[str, str] = {}
    assert rayenv.prepare(None, env)
    assert env == {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token"}
    remote: dict[str, str] = {}
    assert not rayenv.prepare("ray://head:10001", remote) and remote == {}
    # RAY_ADDRESS makes ray.init() join that cluster: a driver there must see its node's own IP.
    joined = {"RAY_ADDRESS": "10.0.0.5:6379"}
    assert not rayenv.prepare(None, joined) and joined == {"RAY_ADDRESS": "10.0.0.5:6379"}


def test_prepare_keeps_an_explicit_auth_mode_for_the_check_to_judge():
    env = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}
    rayenv.prepare(None, env)
    assert env == {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    with pytest.raises(rayenv.RayEnvError, match="RAY_AUTH_MODE=disabled"):
        rayenv.check_before_start(env)


def test_check_before_start_refuses_a_ray_imported_too_early(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "ray._private.ray_constants",
                        types.SimpleNamespace(ENABLE_RAY_CLUSTER=True))
    with pytest.raises(rayenv.RayEnvError, match="RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0") as err:
        rayenv.check_before_start({})
    assert isinstance(err.value, StartupError) and "\n" not in str(err.value)
    monkeypatch.setitem(__import__("sys").modules, "ray._private.ray_constants",
                        types.SimpleNamespace(ENABLE_RAY_CLUSTER=False))
    rayenv.check_before_start({})


def test_check_after_start_refuses_a_node_off_loopback():
    def fake(ip: str) -> object:
        return types.SimpleNamespace(util=types.SimpleNamespace(get_node_ip_address=lambda: ip))

    rayenv.check_after_start(fake("127.0.0.1"))
    with pytest.raises(rayenv.RayEnvError, match="192.0.2.2"):
        rayenv.check_after_start(fake("192.0.2.2"))


# -- health checks under one deadline ---------------------------------------------------------------------------
class _Adapter:
    def __init__(self, health: Health | None = None, wait: threading.Event | None = None) -> None:
        self.health, self.wait = health, wait

    def healthcheck(self) -> Health:
        if self.wait is not None:
            self.wait.wait()
        assert self.health is not None
        return self.health


def _boom() -> object:
    raise ConnectionError("refused")


def test_run_checks_reports_a_silent_check_by_its_endpoint_and_setting():
    stuck = threading.Event()
    try:
        out = run_checks([
            Check("kinesis", lambda: _Adapter(wait=stuck), "http://127.0.0.1:4567", "CALI_AWS__KINESIS_ENDPOINT_URL"),
            Check("s3", lambda: _Adapter(Health("s3-archive", False, "HeadBucket failed")), "http://x:5055",
                  "CALI_AWS__ENDPOINT_URL"),
            Check("llm", lambda: _Adapter(Health("llm", False, "fix CALI_ANALYSIS__LLM__BASE_URL")), "u", "V"),
            Check("state", _boom, "/s", "CALI_STATE__SQLITE_DIR"),
            Check("slack", lambda: _Adapter(Health("slack", True, "ok")), "Slack", "S"),
        ], deadline_s=0.2)
    finally:
        stuck.set()
    assert [h.name for h in out] == ["kinesis", "s3-archive", "llm", "state", "slack"]
    assert not out[0].ok and "http://127.0.0.1:4567 did not answer" in out[0].detail
    assert "CALI_AWS__KINESIS_ENDPOINT_URL" in out[0].detail
    assert out[1].detail == "HeadBucket failed (set by CALI_AWS__ENDPOINT_URL)"
    assert out[2].detail == "fix CALI_ANALYSIS__LLM__BASE_URL"  # already names its variable
    assert not out[3].ok and "ConnectionError: refused" in out[3].detail
    assert out[4] == Health("slack", True, "ok")
