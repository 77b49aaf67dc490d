"""`cali demo` and `cali stack up` with a port taken: one line naming the port and the flag, exit 1, and
nothing they started left running. Each port is taken by a socket that only listens and by one that
accepts and never answers; the race (a port taken after the up-front check) runs with that check off."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import free_port, stack_missing
from tests.support.blockers import KINDS, PortBlocker
from tests.support.require import require
from tests.support.survivors import TAG_VAR, tagged_processes

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
FLAGS = {"slack": "--slack-port", "dashboard": "--dashboard-port", "kinesis": "--kinesis-port",
         "aws": "--aws-port", "serve": "--serve-port"}


def _run(module: str, args: list[str], tmp_path: Path, timeout: float = 300) -> tuple[subprocess.CompletedProcess, str]:
    tag = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if k not in ("SLACK_WEBHOOK_URL", "RAY_ADDRESS")}
    env.update({TAG_VAR: tag, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT)})
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=timeout)
    return done, tag


def _demo_args(tmp_path: Path, taken: str, port: int) -> list[str]:
    ports = {name: free_port() for name in FLAGS}
    ports[taken] = port
    args = ["demo", "--duration", "5", "--quiet", "--state-dir", str(tmp_path / "demo")]
    for name, flag in FLAGS.items():
        args += [flag, str(ports[name])]
    return args


def _assert_one_line(done: subprocess.CompletedProcess, port: int, flag: str, command: str) -> None:
    out = done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, out[-3000:]
    assert len(lines) == 1, done.stderr[-3000:]
    line = lines[0]
    assert line.startswith(f"{command}: ") and f"127.0.0.1:{port}" in line and flag in line, line
    assert "Traceback" not in out and "ray start" not in out, out[-3000:]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("taken", sorted(FLAGS))
def test_demo_names_a_taken_port_before_starting_anything(tmp_path, taken, kind):
    with PortBlocker(kind) as blocker:
        done, tag = _run("cali", _demo_args(tmp_path, taken, blocker.port), tmp_path)
    print(done.stderr)
    _assert_one_line(done, blocker.port, FLAGS[taken], "cali demo")
    assert "starting" not in done.stdout  # found up front: nothing was started
    assert not tagged_processes(tag)


# The order the demo starts things in; each case fails after the ones before it have started.
RACES = [("slack", "accepts-silently"), ("kinesis", "listens"), ("aws", "accepts-silently"),
         ("dashboard", "listens"), ("serve", "accepts-silently")]


@pytest.mark.parametrize(("taken", "kind"), RACES)
def test_demo_stops_what_it_started_when_a_port_is_taken_after_the_check(tmp_path, taken, kind):
    require(stack_missing())
    with PortBlocker(kind) as blocker:
        done, tag = _run("tests.support.no_preflight", _demo_args(tmp_path, taken, blocker.port), tmp_path)
    print(done.stdout[-2000:], done.stderr)
    _assert_one_line(done, blocker.port, FLAGS[taken], "cali demo")
    survivors = tagged_processes(tag)
    assert not survivors, "\n".join(survivors)
    assert not list((tmp_path / "demo" / "stack").glob("*.pid"))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("taken", "flag"), [("kinesis", "--kinesis-port"), ("aws", "--aws-port")])
def test_stack_up_names_a_taken_port_and_stops_what_it_started(tmp_path, taken, flag, kind):
    require(stack_missing())
    with PortBlocker(kind) as blocker:
        other = "--aws-port" if taken == "kinesis" else "--kinesis-port"
        args = ["stack", "up", "--state-dir", str(tmp_path / "stack"), flag, str(blocker.port), other, str(free_port())]
        done, tag = _run("cali", args, tmp_path)
        _assert_one_line(done, blocker.port, flag, "cali stack up")
        # The race: past the check, kinesalite is up when moto finds its port taken, and is stopped.
        done, tag2 = _run("tests.support.no_preflight", args, tmp_path)
        _assert_one_line(done, blocker.port, flag, "cali stack up")
    assert not tagged_processes(tag) and not tagged_processes(tag2)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("args", "env_var", "flag"), [
    (["serve", "--port", "{port}"], None, "--port"),
    (["serve"], "CALI_RAY__DASHBOARD_PORT", "CALI_RAY__DASHBOARD_PORT")])
def test_serve_names_a_taken_port(tmp_path, monkeypatch, args, env_var, flag, kind):
    with PortBlocker(kind) as blocker:
        if env_var:
            monkeypatch.setenv(env_var, str(blocker.port))
        done, tag = _run("cali", [a.format(port=blocker.port) for a in args], tmp_path)
    _assert_one_line(done, blocker.port, flag, "cali serve")
    assert not tagged_processes(tag)
