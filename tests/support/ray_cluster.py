"""A Ray cluster of the test's own (`ray start --head --block` on free loopback ports), for Ray Job submission.

`ray.init()` always puts the dashboard agent on port 52365, which another Ray on a shared machine may hold;
then the Job API answers "No available agent". This cluster takes a free port for every listener, and is
stopped by signalling its own process group (never `ray stop`, which would stop every Ray on the machine).
It keeps its files in a temp dir of its own: `ray start` records itself in <temp-dir>/ray_current_cluster,
and in the default /tmp/ray that file would make every other `ray.init()` on the machine join this cluster.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from cali.stack.procs import free_port


@contextlib.contextmanager
def local_ray_cluster(log: Path, num_cpus: int = 2, env: dict[str, str] | None = None,
                      timeout_s: float = 180.0) -> Iterator[dict[str, str]]:
    ports = {name: free_port() for name in ("port", "dashboard-port", "dashboard-agent-listen-port",
                                             "dashboard-agent-grpc-port", "node-manager-port",
                                             "object-manager-port", "metrics-export-port", "runtime-env-agent-port",
                                             "ray-client-server-port")}
    temp_dir = tempfile.mkdtemp(prefix="rc", dir="/tmp")  # short: Ray's socket paths must stay under 108 bytes
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", "--node-ip-address=127.0.0.1",
           "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--num-cpus={num_cpus}", "--disable-usage-stats",
           f"--temp-dir={temp_dir}"]
    cmd += [f"--{name}={port}" for name, port in ports.items()]
    # Token authentication, as cali's own local Ray: the cluster, the jobs it runs and this process's
    # drivers and Job API client all take the token from ~/.ray/auth_token (created on first use).
    proc_env = (env or dict(os.environ)) | {"RAY_AUTH_MODE": "token", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                                            "RAY_USAGE_STATS_ENABLED": "0"}
    _ensure_token()  # `ray start` in token mode exits when there is none yet (a fresh machine)
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=proc_env, start_new_session=True)
    dashboard = f"http://127.0.0.1:{ports['dashboard-port']}"
    # A driver of this process that joins the cluster must use its auth mode: a driver in token mode
    # refuses every reply that workers of a cluster without it push (a Serve handle's .result() then
    # waits until it times out), and the Job API client sends the token only in token mode.
    before = os.environ.get("RAY_AUTH_MODE")
    _auth_mode("token")
    try:
        _wait_for_jobs_api(dashboard, proc, timeout_s, log)
        yield {"address": f"127.0.0.1:{ports['port']}", "dashboard": dashboard}
    finally:
        _auth_mode(before)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:  # `ray start --block` often outlives SIGTERM by far: nothing here needs a graceful stop
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _ensure_token() -> None:
    """Creates ~/.ray/auth_token if missing, as `ray get-auth-token --generate` does (without printing it)."""
    from ray._private.authentication.authentication_token_setup import generate_and_save_token
    from ray._raylet import AuthenticationTokenLoader

    loader = AuthenticationTokenLoader.instance()
    if not loader.has_token(ignore_auth_mode=True):
        generate_and_save_token()
        loader.reset_cache()


def _auth_mode(mode: str | None) -> None:
    """Sets RAY_AUTH_MODE for this process; Ray caches its config at import, so it is read again here."""
    if mode is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = mode
    if "ray._raylet" in sys.modules:
        sys.modules["ray._raylet"].Config.initialize("")


def _wait_for_jobs_api(dashboard: str, proc: subprocess.Popen, timeout_s: float, log: Path) -> None:
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            client = JobSubmissionClient(dashboard)
            job = client.submit_job(entrypoint="true")  # the agent that runs jobs is up only when this works
            while str(client.get_job_status(job)).rsplit(".", 1)[-1] not in ("SUCCEEDED", "FAILED", "STOPPED"):
                time.sleep(0.5)
            return
        except Exception as exc:  # not up yet
            last = str(exc)[:300]
            time.sleep(2)
    raise TimeoutError(f"Ray Jobs API at {dashboard} not ready after {timeout_s:.0f}s: {last}")
