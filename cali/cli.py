"""The `cali` command line (typer + rich)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="CALI: application logs become actionable incidents, on Ray.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
console = Console()


@app.callback()
def _entry() -> None:
    # Ray reads how to bind when it is first imported: set that before any command can import it.
    from cali.rayenv import prepare

    prepare(_ray_address())


def _ray_address() -> str | None:
    from cali.config import load_settings

    try:
        return load_settings().ray.address
    except Exception:  # the command itself reports a bad configuration; here it only means "local"
        return None


def _register() -> None:
    from cali.analysis.commands import eval_app, kb_app
    from cali.batch.command import batch_app
    from cali.fluentbit.command import fluentbit_app
    from cali.gen.command import generate
    from cali.stack.command import stack_app

    app.command("generate", help="Write realistic service logs with scripted incidents.")(generate)
    app.add_typer(stack_app, name="stack")
    app.add_typer(kb_app, name="kb")
    app.add_typer(eval_app, name="eval")
    app.add_typer(fluentbit_app, name="fluentbit")
    from cali.console.command import console_command

    app.command("console", help="The CALI console (incidents, trends, log search, pipeline) at /console.")(
        console_command)
    app.add_typer(batch_app, name="batch")
    try:
        from cali.ship.command import ship
    except ImportError:
        pass
    else:
        app.command("ship", help="Tail log files and put records on Kinesis.")(ship)


@app.command()
def schema(out: Path | None = typer.Option(None, help="Write to this file instead of stdout.")) -> None:
    """Print the LogRecord JSON schema."""
    from cali.core.records import LogRecord

    text = json.dumps(LogRecord.model_json_schema(), indent=2, sort_keys=True) + "\n"
    if out:
        out.write_text(text)
    else:
        sys.stdout.write(text)


def _settings():  # noqa: ANN202
    from pydantic import ValidationError

    from cali.config import load_settings

    try:
        return load_settings()
    except ValidationError as exc:
        console.print(f"[red]invalid configuration[/red] (env CALI_<SECTION>__<FIELD> or cali.toml):\n{exc}")
        raise typer.Exit(2) from exc


@app.command()
def fingerprint(
    input: Path | None = typer.Option(None, "--input", help="Messages, one per line (default: stdin)."),
    state: Path | None = typer.Option(None, "--state", help="Miner state JSON: loaded if present, saved at the end."),
) -> None:
    """Group log messages into templates: one `<group_id>\\t<template>` line per input line."""
    from cali.grouping.cli import fingerprint_command

    fingerprint_command(input, state)


@app.command()
def health(
    pipeline: bool = typer.Option(False, "--pipeline", help="Check the running pipeline's actors and progress "
                                  "instead (exit 0 or 1: a liveness probe)."),
) -> None:
    """Check every configured external system, or with --pipeline the running pipeline."""
    from cali.bootstrap import healthchecks

    if pipeline:
        _pipeline_health(_settings())
        return
    results = healthchecks(_settings())
    table = Table("system", "ok", "detail")
    for h in results:
        table.add_row(h.name, "[green]yes[/green]" if h.ok else "[red]no[/red]", h.detail)
    console.print(table)
    raise typer.Exit(0 if all(h.ok for h in results) else 1)


@app.command()
def run(
    start: str | None = typer.Option(None, help="Where a shard without a checkpoint starts: TRIM_HORIZON, LATEST "
                                     "or AT_TIMESTAMP (default: CALI_KINESIS__START, else TRIM_HORIZON)."),
    start_timestamp: str | None = typer.Option(None, help="ISO-8601 time for --start AT_TIMESTAMP."),
) -> None:
    """Start the pipeline actors on Ray (local loopback Ray, or CALI_RAY__ADDRESS) and keep them running."""
    from pydantic import ValidationError

    from cali.actors.launch import start_pipeline, stop_pipeline
    from cali.config import KinesisSettings
    from cali.startup import reported, start_ray, starting

    settings = _settings()
    if start or start_timestamp:
        try:
            kinesis = KinesisSettings.model_validate({
                **settings.kinesis.model_dump(), "start": start or settings.kinesis.start,
                "start_timestamp": start_timestamp or settings.kinesis.start_timestamp})
        except ValidationError as exc:
            console.print(f"[red]invalid --start/--start-timestamp[/red]: {exc}")
            raise typer.Exit(2) from exc
        settings = settings.model_copy(update={"kinesis": kinesis})
    from cali.bootstrap import healthchecks

    failed = [h for h in healthchecks(settings) if not h.ok]
    for h in failed:  # one plain line per system that failed or did not answer
        typer.echo(f"cali run: {h.name}: {h.detail}", err=True)
    if failed:
        raise typer.Exit(1)
    with reported("cali run"), contextlib.ExitStack() as started:
        start_ray(settings, started, dashboard_flag="CALI_RAY__DASHBOARD_PORT")
        with starting(None, system="the pipeline actors"):
            start_pipeline(settings)
        started.pop_all()  # running: the actors and the local Ray stay up until Ctrl-C
    console.print("pipeline started; Ctrl-C stops it")
    try:
        code = _watch(settings)
    except KeyboardInterrupt:
        stop_pipeline(settings)
        return
    raise typer.Exit(code)


def _watch(settings) -> int:  # noqa: ANN001
    """Checks the pipeline every pipeline.check_interval_s; after three failing checks in a row it says
    why, stops what is left and returns 3, so a service manager restarts `cali run`."""
    import logging
    import time

    from cali.actors.launch import pipeline_health, stop_pipeline

    log = logging.getLogger("cali.run")
    failures = 0
    while True:
        time.sleep(settings.pipeline.check_interval_s)
        try:
            health = pipeline_health(settings)
        except Exception as exc:  # Ray itself is unreachable
            health = None
            problem = f"Ray did not answer: {type(exc).__name__}: {exc}"
        else:
            problem = health.summary()
        if health is not None and health.ok:
            failures = 0
            continue
        failures += 1
        log.warning("pipeline check %d/3 failed: %s", failures, problem)
        if failures >= 3:
            console.print(f"[red]the pipeline is not working[/red]: {problem}; exiting (3) so that it is restarted")
            try:
                stop_pipeline(settings, timeout=10)
            except Exception as exc:  # dead actors cannot be stopped gracefully
                log.warning("stopping what is left failed: %s", exc)
            return 3


def _connect(settings) -> None:  # noqa: ANN001
    # The `cali` callback set Ray's loopback variables before anything imported Ray (cali/rayenv.py).
    import ray

    try:
        ray.init(address=settings.ray.address or "auto", namespace=settings.ray.namespace,
                 logging_level="ERROR", log_to_driver=False)
    except ConnectionError as exc:
        console.print(f"[red]no running Ray cluster[/red]: {exc}; start one with `cali demo` or `cali run`")
        raise typer.Exit(1) from exc


def _pipeline_health(settings) -> None:  # noqa: ANN001
    from cali.actors.launch import pipeline_health

    _connect(settings)
    result = pipeline_health(settings)
    console.print("[green]pipeline ok[/green]" if result.ok else f"[red]pipeline unhealthy[/red]: {result.summary()}")
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables.")) -> None:
    """Per-shard status of a running pipeline: MillisBehindLatest, records/s, last checkpoint."""
    from cali.actors.launch import pipeline_status

    settings = _settings()
    _connect(settings)
    st = pipeline_status(settings)
    if as_json:
        print(json.dumps(st, default=str))
        return
    from cali.demo_view import shard_table

    console.print(shard_table(st["shards"]))
    console.print({"trackers": st["trackers"], "alerter": st["alerter"]})


@app.command()
def analyze(
    db: Path | None = typer.Option(None, help="Milvus Lite file or server URI (default CALI_ANALYSIS__KB_URI); "
                                   "without one, a temporary knowledge base is built from knowledge/."),
    service: str = typer.Option("cli", help="Service name for plain-text input."),
) -> None:
    """Analyse one LogRecord JSON (or plain text) from stdin; print the analysis JSON."""
    from cali.analysis.local import analyze_text

    text = sys.stdin.read()
    if not text.strip():
        console.print("[red]nothing on stdin[/red]: pipe a LogRecord JSON or an error text")
        raise typer.Exit(2)
    settings = _settings()
    try:
        result = analyze_text(text, settings, db=db, service=service)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    print(json.dumps(result, indent=2))


@app.command()
def serve(
    config: Path = typer.Option(Path(__file__).with_name("serve") / "config.yaml", help="Ray Serve config file."),
    port: int | None = typer.Option(None, help="HTTP port (default: the config's, 8000)."),
) -> None:
    """Start the analysis app (Ray Serve) on the local Ray, HTTP on 127.0.0.1; Ctrl-C stops it."""
    from cali.serve.command import load_config, pipeline_args, serve_until_interrupted
    from cali.startup import preflight, reported, serve_port, start_ray, start_serve

    settings = _settings()
    app_config = load_config(config)
    with reported("cali serve"), contextlib.ExitStack() as started:
        preflight([serve_port(app_config, port, "--port")])  # before Ray, which takes seconds to start
        start_ray(settings, started, dashboard_flag="CALI_RAY__DASHBOARD_PORT")
        url = start_serve(app_config, started, port=port, flag="--port", args_update=pipeline_args(settings))
        started.pop_all()
    console.print(f"analysis app on {url} (POST /analyze, POST /kb/search, GET /healthz, docs at {url}/docs)")
    serve_until_interrupted()


@app.command()
def demo(
    duration: float | None = typer.Option(None, help="Stop after this many seconds and print a JSON summary."),
    seed: int = typer.Option(7, help="Seed for the generator: the same seed gives the same logs."),
    rate: float = typer.Option(60.0, help="Generated lines per second."),
    incident_every: float = typer.Option(12.0, help="Seconds between scripted incidents."),
    window: float = typer.Option(30.0, help="Throttle window per incident, seconds (production: 300)."),
    shards: int = typer.Option(2, help="Kinesis shards."),
    state_dir: Path = typer.Option(Path(".local/demo"), help="Where the demo keeps logs, stack and state."),
    keep_stack: bool = typer.Option(False, help="Leave the local stack running at the end (for inspection)."),
    kinesis_port: int = typer.Option(4567), aws_port: int = typer.Option(5055),
    slack_port: int = typer.Option(5066), dashboard_port: int = typer.Option(8265),
    quiet: bool = typer.Option(False, help="No live view; only the final JSON line."),
    analysis: bool = typer.Option(True, help="Run the AI analysis app (Ray Serve) and post analyses after alerts."),
    serve_port: int = typer.Option(8000, help="HTTP port of the analysis app (POST /analyze, /docs)."),
    learn: bool = typer.Option(False, help="At the end, run the day's batch: quality checks, the reindex Ray Job "
                               "and the report; the summary adds learned and quality_failures."),
) -> None:
    """Run everything locally: stack, Ray, generator, shipper, actors, a Slack receiver; show it live."""
    from cali.demo import DemoOptions, run_demo
    from cali.startup import reported

    with reported("cali demo"):
        summary = run_demo(DemoOptions(
            duration=duration, seed=seed, rate=rate, incident_every=incident_every, window=window, shards=shards,
            state_dir=state_dir.resolve(), keep_stack=keep_stack, kinesis_port=kinesis_port, aws_port=aws_port,
            slack_port=slack_port, dashboard_port=dashboard_port, quiet=quiet, analysis=analysis,
            serve_port=serve_port, learn=learn), console)
    if duration is not None:
        print(json.dumps(summary), flush=True)


# `cali fingerprint` is a filter in pipelines and runs for each batch: it does without the other
# commands and their imports (boto3, the analysis stack), which take most of a second.
if sys.argv[1:2] != ["fingerprint"]:
    _register()
