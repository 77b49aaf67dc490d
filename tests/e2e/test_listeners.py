"""`cali demo`'s processes listen on loopback only, or demand credentials: every listening socket of the
demo's process tree (Ray, the Serve app, kinesalite, moto, the local Slack receiver) is checked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cali.serve.command import load_config
from cali.stack import StackConfig, down
from tests.integration.conftest import free_port, stack_missing
from tests.support.listeners import listeners, process_tree, verdict
from tests.support.require import require
from tests.support.survivors import tagged_processes

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
APP = load_config()
DEPLOYMENTS = sorted(APP["overrides"])
# What the demo must be running before the snapshot means anything: one process per Ray part and
# Serve deployment, and the pipeline's actors (started last, after the Serve app is deployed).
EXPECTED = ["gcs_server", "raylet", "ray::ShardReader", "ray::IncidentTracker", "ray::Alerter",
            *[f"ray::ServeReplica:{APP['name']}:{d}" for d in DEPLOYMENTS]]


def _names(pids: list[int]) -> str:
    import psutil

    out = []
    for pid in pids:
        try:
            out.append(" ".join(psutil.Process(pid).cmdline()))
        except psutil.Error:
            continue
    return "\n".join(out)


def _wait_for_everything(proc: subprocess.Popen, timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    missing = EXPECTED
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the demo exited early ({proc.returncode})")
        pids = [p.pid for p in process_tree(proc.pid)]
        names = _names(pids)
        missing = [e for e in EXPECTED if e not in names]
        if not missing:
            return pids
        time.sleep(2)
    raise AssertionError(f"the demo never ran {missing}")


def test_every_listener_of_the_demo_is_loopback_or_authenticated(tmp_path):
    require(stack_missing())
    ports = {"kinesis": free_port(), "aws": free_port(), "slack": free_port(), "dashboard": free_port(),
             "serve": free_port()}
    state_dir = tmp_path / "demo"
    tag = uuid.uuid4().hex
    # As a user runs it: no Ray variables from the Makefile or the test runner, no real Slack.
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_AUTH_MODE", "RAY_ADDRESS", "SLACK_WEBHOOK_URL")}
    env.update({"RAY_USAGE_STATS_ENABLED": "0", "CALI_TEST_TAG": tag})
    cmd = [sys.executable, "-m", "cali", "demo", "--duration", "900", "--quiet", "--seed", "3",
           "--state-dir", str(state_dir), "--kinesis-port", str(ports["kinesis"]), "--aws-port", str(ports["aws"]),
           "--slack-port", str(ports["slack"]), "--dashboard-port", str(ports["dashboard"]),
           "--serve-port", str(ports["serve"])]
    log = (tmp_path / "demo.out").open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        pids = _wait_for_everything(proc, timeout_s=300)
        found = listeners(pids)
        verdicts = [(s, *verdict(s)) for s in found]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        down(StackConfig(state_dir=state_dir / "stack"))
        log.close()

    for s, ok, why in verdicts:
        print(f"{'ok  ' if ok else 'OPEN'} {s}: {why}")
    open_ = [f"{s}: {why}" for s, ok, why in verdicts if not ok]
    assert not open_, "listening beyond loopback without authentication:\n" + "\n".join(open_)
    # The snapshot covered the demo's own servers, each on its port on loopback.
    bound = {s.port: s for s in found}
    for name, port in ports.items():
        assert port in bound and bound[port].loopback, f"{name} port {port} not seen on loopback: {bound.get(port)}"
    # Every Serve replica's sockets were in the snapshot: Ray Serve 2.60 binds each replica's
    # inter-deployment gRPC server to [::], the listener this test exists for.
    processes = {s.process for s in found}
    assert all(f"ray::ServeReplica:{APP['name']}:{d}" in processes for d in DEPLOYMENTS), processes
    assert not tagged_processes(tag), "processes of the demo survived it"
