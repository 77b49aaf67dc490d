"""`up`, `down` and `status` of the local stack: kinesalite for Kinesis, single-threaded moto for the rest."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import replace

from botocore.exceptions import BotoCoreError, ClientError

from cali.stack import procs, resources
from cali.stack.aws import boto_client
from cali.stack.config import StackConfig, repo_root
from cali.stack.tls import ensure_tls

KINESIS = "kinesalite"
AWS = "moto"
SERVICES = (KINESIS, AWS)
SERVER_JS = "kinesalite_server.js"
MOTO_MODULE = "cali.stack.moto_single"


StackError = procs.StackError


def _kinesis_spec(cfg: StackConfig) -> procs.ServiceSpec:
    node = shutil.which("node")
    modules = cfg.resolved_node_modules()
    if node is None:
        raise StackError("node is not on PATH; install Node.js 18+ to run kinesalite")
    if not (modules / "kinesalite").is_dir():
        raise StackError(f"kinesalite is not installed under {modules}; run: "
                         f"npm install --prefix .local/node kinesalite@3.3.3")
    script = repo_root() / "cali" / "stack" / SERVER_JS
    argv = [node, str(script), str(cfg.kinesis_port), str(cfg.state_dir / "kinesis-data")]
    if cfg.tls:
        paths = ensure_tls(cfg.tls_dir)
        argv += ["--tls", str(paths["key"]), str(paths["cert"])]
    return procs.ServiceSpec(KINESIS, argv, cfg.kinesis_port, marker=SERVER_JS,
                             env={"NODE_PATH": str(modules)}, cwd=cfg.state_dir)


def _aws_spec(cfg: StackConfig) -> procs.ServiceSpec:
    argv = [sys.executable, "-m", MOTO_MODULE, "--host", "127.0.0.1", "--port", str(cfg.aws_port)]
    return procs.ServiceSpec(AWS, argv, cfg.aws_port, marker=MOTO_MODULE,
                             env={"MOTO_PORT": str(cfg.aws_port), "PYTHONPATH": _pythonpath()},
                             cwd=cfg.state_dir)


def _pythonpath() -> str:
    extra = os.environ.get("PYTHONPATH")
    return str(repo_root()) + (os.pathsep + extra if extra else "")


def _health(cfg: StackConfig, name: str) -> str | None:
    """None when the service answers an API call, else why not."""
    try:
        if name == KINESIS:
            client = boto_client("kinesis", cfg.kinesis_endpoint, cfg.region, verify=cfg.kinesis_verify,
                                 connect_timeout=1, read_timeout=3, max_attempts=1)
            client.list_streams(Limit=1)
        else:
            client = boto_client("s3", cfg.aws_endpoint, cfg.region, connect_timeout=1, read_timeout=3,
                                 max_attempts=1)
            client.list_buckets()
        return None
    except (BotoCoreError, ClientError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _endpoint(cfg: StackConfig, name: str) -> str:
    return cfg.kinesis_endpoint if name == KINESIS else cfg.aws_endpoint


def up(cfg: StackConfig, timeout_s: float = 30.0) -> dict:
    """Starts what is not running, waits for health, creates the resources; safe to repeat."""
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    services: dict[str, dict] = {}
    try:
        for name, make_spec in ((KINESIS, _kinesis_spec), (AWS, _aws_spec)):
            info = procs.read_pid(cfg.state_dir, name)
            if procs.is_ours_alive(info) and _health(cfg, name) is None:
                services[name] = {"pid": info["pid"], "started": False, "endpoint": _endpoint(cfg, name)}
                continue
            if procs.is_ours_alive(info):  # alive but not answering: restart it
                procs.stop(cfg.state_dir, name)
            info = procs.start(make_spec(cfg), cfg.state_dir)
            services[name] = {"pid": info["pid"], "started": True, "endpoint": _endpoint(cfg, name)}
            procs.wait_healthy(name, info, lambda n=name: _health(cfg, n), timeout_s)
        try:
            created = resources.ensure_all(cfg)
        except (BotoCoreError, ClientError, TimeoutError) as exc:
            logs = ", ".join(str(procs.log_path(cfg.state_dir, n)) for n in SERVICES)
            raise StackError(f"creating stack resources failed: {exc}; logs: {logs}") from exc
    except BaseException:
        # A failed start leaves nothing of its own running; what was already up before it stays.
        for name, s in services.items():
            if s["started"]:
                procs.stop(cfg.state_dir, name)
        raise
    return {"services": services, "resources": created, "state_dir": str(cfg.state_dir)}


def down(cfg: StackConfig) -> dict:
    """Stops only the processes recorded in this state dir's pid files."""
    return {name: procs.stop(cfg.state_dir, name) for name in reversed(SERVICES)}


def status(cfg: StackConfig) -> dict:
    out = {}
    for name in SERVICES:
        info = procs.read_pid(cfg.state_dir, name)
        alive = procs.is_ours_alive(info)
        if name == KINESIS and info and "--tls" in info.get("argv", []) and not cfg.tls:
            cfg = replace(cfg, tls=True)  # started with --tls: probe it over https
        reason = _health(cfg, name) if alive else "not running"
        out[name] = {"pid": info.get("pid") if info else None, "alive": alive,
                     "endpoint": _endpoint(cfg, name), "healthy": reason is None,
                     "health": "ok" if reason is None else reason,
                     "log": str(procs.log_path(cfg.state_dir, name))}
    return out
