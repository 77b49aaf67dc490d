"""`cali demo`: the local stack, Ray, generator, shipper and actors in one command."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from cali import bootstrap
from cali.config import Settings, local_settings
from cali.startup import Port, preflight, serve_shutdown, start_ray, start_serve, starting


@dataclass
class DemoOptions:
    duration: float | None
    seed: int
    rate: float
    incident_every: float
    window: float
    shards: int
    state_dir: Path
    keep_stack: bool
    kinesis_port: int
    aws_port: int
    slack_port: int
    dashboard_port: int
    quiet: bool
    analysis: bool = True
    serve_port: int = 8000
    learn: bool = False  # at the end, the day's batch: checks, the reindex Ray Job, the report


class _Threads:
    """Generator and shipper threads with one stop event each."""

    def __init__(self) -> None:
        self.items: list[tuple[threading.Thread, threading.Event]] = []

    def start(self, target: Any, name: str) -> threading.Event:
        stop = threading.Event()
        t = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
        t.start()
        self.items.append((t, stop))
        return stop


def demo_ports(opt: DemoOptions, *, receiver: bool) -> dict[str, Port]:
    """Every port the demo listens on, with the flag that moves it."""
    ports = {"kinesis": Port("kinesalite, Kinesis", opt.kinesis_port, "--kinesis-port", process="kinesalite"),
             "aws": Port("moto, S3/DynamoDB/Secrets Manager", opt.aws_port, "--aws-port", process="moto"),
             "dashboard": Port("Ray dashboard", opt.dashboard_port, "--dashboard-port")}
    if receiver:
        ports["slack"] = Port("local Slack receiver", opt.slack_port, "--slack-port")
    ports["serve"] = Port("Ray Serve HTTP (analysis app, console)", opt.serve_port, "--serve-port")
    return ports


def run_demo(opt: DemoOptions, console: Console) -> dict[str, Any]:
    """Raises StartupError (one line) when something fails to start, after stopping what did start."""
    from cali.stack import lifecycle
    from cali.stack.config import StackConfig

    root = opt.state_dir
    # A fresh run each time: the same seed must give the same run, not a continuation.
    if root.exists():
        lifecycle.down(StackConfig(state_dir=root / "stack"))
        shutil.rmtree(root)
    real_webhook = os.environ.get("SLACK_WEBHOOK_URL")
    ports = demo_ports(opt, receiver=not real_webhook)
    preflight(ports.values())  # the race with another process taking a port is handled where each starts
    with contextlib.ExitStack() as started:
        return _run(opt, console, root, real_webhook, ports, started)


def _run(opt: DemoOptions, console: Console, root: Path, real_webhook: str | None, ports: dict[str, Port],
         started: contextlib.ExitStack) -> dict[str, Any]:
    """Each thing started registers its stop on `started` before anything else can fail."""
    from cali.actors.launch import pipeline_status, start_pipeline, stop_pipeline
    from cali.gen.sources import DEMO_SOURCES, demo_sources
    from cali.gen.writer import run_generate
    from cali.notify.local_receiver import LocalSlack
    from cali.ship.shipper import Shipper
    from cali.stack import lifecycle
    from cali.stack.config import StackConfig

    started_at = datetime.now(UTC)  # the learn step reads the archive from here on
    logs, state = root / "logs", root / "state"
    logs.mkdir(parents=True)
    receiver = None
    if not real_webhook:
        with starting(ports["slack"]):
            receiver = LocalSlack(port=opt.slack_port, log_path=root / "slack.jsonl").start()
        started.callback(receiver.stop)
    webhook = real_webhook or receiver.url  # type: ignore[union-attr]
    stack_cfg = StackConfig(state_dir=root / "stack", kinesis_port=opt.kinesis_port, aws_port=opt.aws_port,
                            shards=opt.shards, webhook_url=webhook)
    console.print(f"starting local stack (kinesalite :{opt.kinesis_port}, moto :{opt.aws_port}) ...")
    # Registered before up(): kinesalite may be running when moto fails. A failed start always stops it.
    started.push(lambda failed, *_: _stack_down(stack_cfg, keep=opt.keep_stack and failed is None))
    with starting(ports["kinesis"], ports["aws"], system="local stack"):
        lifecycle.up(stack_cfg)
    # The webhook URL is read from Secrets Manager, as in production.
    settings: Settings = local_settings(
        kinesis_endpoint=stack_cfg.kinesis_endpoint, aws_endpoint=stack_cfg.aws_endpoint, state_dir=state,
        webhook_url=None, alerting={"window_s": opt.window, "env": "demo"},
        analysis={"enabled": opt.analysis, "kb_uri": str(root / "kb.db")},
        ray={"dashboard_port": opt.dashboard_port, "reader_cpus": 0.1, "tracker_cpus": 0.1, "alerter_cpus": 0.05})
    console.print("starting Ray (loopback only) and the actors ...")
    start_ray(settings, started, dashboard_flag=ports["dashboard"].flag, num_cpus=2)
    dashboard = f"http://127.0.0.1:{opt.dashboard_port}"
    if opt.analysis:
        from cali.serve.command import load_config, merge_args, pipeline_args

        console.print("starting the analysis app on Ray Serve (MiniLM, Milvus Lite knowledge base) ...")
        # The key stays out of the Serve args: replicas read CALI_ANALYSIS__LLM__API_KEY themselves.
        llm = settings.analysis.llm.model_dump(mode="json", exclude={"api_key"}) if settings.analysis.llm else None
        start_serve(load_config(), started, port=opt.serve_port, flag=ports["serve"].flag,
                    args_update=merge_args(pipeline_args(settings), {"knowledge": {"uri": str(root / "kb.db")},
                                                                     "analyzer": {"llm": llm}}),
                    hint="`cali demo --no-analysis` runs without it")
    from cali.serve.command import load_config
    from cali.serve.console import deploy_console

    # The console reads the index the readers and the alerter write (state/index.db).
    started.callback(serve_shutdown)
    with starting(ports["serve"], system="the CALI console on Ray Serve"):
        console_url = deploy_console(load_config(name="cali-console"), port=opt.serve_port, args_update={
            "index": {"sqlite_path": str(state / "index.db")}, "ray_namespace": settings.ray.namespace,
            **({} if opt.analysis else {"knowledge": None})})
    console.print(f"CALI console: [bold]{console_url}/[/bold]")
    with starting(None, system="the pipeline actors", hint=f"see the Ray dashboard, {dashboard}"):
        start_pipeline(settings)

    gen_result: dict[str, Any] = {}
    sources = demo_sources(logs)
    shipper = Shipper(sources, bootstrap.kinesis_source(settings), root / "shipper-offsets.json",
                      host=socket.gethostname(), flush_after_s=0.3)
    started.callback(shipper.close)
    threads = _Threads()
    gen_stop = threads.start(lambda stop: gen_result.update(run_generate(
        logs, seed=opt.seed, rate=opt.rate, duration=opt.duration, realtime=True, max_bytes=5 * 1024 * 1024,
        backups=3, stop_event=stop, incident_every_s=opt.incident_every, sources=DEMO_SOURCES)), "generator")
    ship_stop = threads.start(lambda stop: shipper.run(stop), "shipper")

    def snapshot() -> tuple[dict[str, Any], dict[str, Any]]:
        st = pipeline_status(settings)
        shards = st["shards"]
        trackers = st["trackers"]
        counts = {
            "generated": gen_result.get("events", "…"), "shipped": shipper.stats["records_put"],
            "consumed": sum(s.get("records", 0) for s in shards),
            "archived": sum(s.get("valid", 0) for s in shards), "dlq": sum(s.get("dead", 0) for s in shards),
            "alerts_sent": sum(t["alerts_sent"] for t in trackers),
            "alerts_suppressed": sum(t["alerts_suppressed"] for t in trackers),
            "analyses_posted": ((st.get("alerter") or {}).get("analysis") or {}).get("posted", 0),
        }
        return counts, st

    received = receiver.received if receiver else []
    deadline = time.monotonic() + opt.duration if opt.duration is not None else None
    interrupted = False
    try:
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            while deadline is None or time.monotonic() < deadline:
                counts, st = snapshot()
                if not opt.quiet:
                    from cali.demo_view import live_view

                    live.update(live_view(counts, st["shards"], received, dashboard))
                time.sleep(1.0)
    except KeyboardInterrupt:
        interrupted = True
    counts = _wind_down(gen_stop, ship_stop, threads, shipper, snapshot, interrupted, gen_result)
    stop_pipeline(settings)
    counts["alerts_delivered"] = len(received) if receiver else None
    counts["generated"] = gen_result.get("events", 0)
    if opt.learn and not interrupted:
        from cali.batch.demo_step import learn_from_demo

        counts.update(learn_from_demo(settings, started_at, dashboard, [s.service for s in DEMO_SOURCES], console))
    return counts


def _stack_down(cfg: Any, *, keep: bool) -> None:  # None: ExitStack must not swallow the exception
    from cali.stack import lifecycle

    if not keep:
        lifecycle.down(cfg)


def _wind_down(gen_stop: threading.Event, ship_stop: threading.Event, threads: _Threads, shipper: Any,
               snapshot: Any, interrupted: bool, generated: dict[str, Any]) -> dict[str, Any]:
    """Generator stops, the shipper ships what was written, readers catch up, alerts drain."""
    gen_stop.set()
    threads.items[0][0].join(timeout=10)
    # The shipper keeps tailing until every written event is joined (an idle joiner flushes after
    # flush_after_s) and put; only then does it stop.
    deadline = time.monotonic() + (2 if interrupted else 20)
    while time.monotonic() < deadline:
        st = shipper.stats
        if st["events"] >= generated.get("events", 0) and st["queued"] == 0:
            break
        time.sleep(0.1)
    ship_stop.set()
    threads.items[1][0].join(timeout=10)
    shipped = shipper.stats["records_put"]
    last, stable_since, deadline = None, time.monotonic(), time.monotonic() + (5 if interrupted else 60)
    counts: dict[str, Any] = {}
    while time.monotonic() < deadline:
        counts, st = snapshot()
        alerter = st.get("alerter") or {}
        analysis = alerter.get("analysis") or {}
        delivered = alerter.get("delivered", 0)
        key = (counts["consumed"], counts["alerts_sent"], delivered)
        if key != last:
            last, stable_since = key, time.monotonic()
        analysed = analysis.get("requested", 0) <= analysis.get("posted", 0) + analysis.get("failed", 0)
        caught_up = counts["consumed"] >= shipped and analysed and \
            delivered + alerter.get("dead", 0) >= counts["alerts_sent"] + counts["analyses_posted"]
        if caught_up and time.monotonic() - stable_since >= 2.0:
            break
        time.sleep(0.25)
    return counts
