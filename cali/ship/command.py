"""`cali ship`: tail the configured sources' log files and put their events on the Kinesis stream."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from pathlib import Path

import typer
from rich.console import Console

from cali.ship.settings import ShipConfigError, load_config
from cali.ship.shipper import PARTITION_KEYS, Shipper
from cali.sources.kinesis import KinesisSource
from cali.stack.aws import boto_client

console = Console(stderr=True)


def ship(
    config: Path | None = typer.Option(None, "--config", help="A TOML file with [[sources]] and [[formats]] (e.g. "
                                       "examples/cali.toml); default: cali.toml here, or CALI_SOURCES."),
    stream: str = typer.Option("cali-logs", "--stream", help="Kinesis stream to put records on."),
    endpoint: str | None = typer.Option("http://127.0.0.1:4567", "--endpoint",
                                        help="Kinesis endpoint (kinesalite locally); 'aws' for real AWS."),
    region: str = typer.Option("us-east-1", "--region"),
    offsets: Path = typer.Option(Path(".local/shipper/offsets.json"), "--offsets",
                                 help="Offsets file; the dead-letter file shipper-dlq.jsonl goes beside it."),
    partition_key: str = typer.Option("event", "--partition-key",
                                      help=f"One of {', '.join(PARTITION_KEYS)}."),
    host: str = typer.Option(socket.gethostname(), "--host", help="Added as `host` to lines that lack one."),
    ca_bundle: Path | None = typer.Option(None, "--ca-bundle", help="CA to verify a TLS endpoint (stack --tls)."),
    flush_after: float = typer.Option(0.5, "--flush-after", help="Seconds before a multiline event is closed."),
    rescan: float = typer.Option(5.0, "--rescan", help="Seconds between looks for new files matching a glob."),
    poll_interval: float = typer.Option(0.05, "--poll-interval"),
    once: bool = typer.Option(False, "--once", help="Ship what is there now and exit."),
) -> None:
    """Tail every configured source (file or glob), survive rotation and restarts, put events on Kinesis."""
    if partition_key not in PARTITION_KEYS:
        raise typer.BadParameter(f"must be one of {PARTITION_KEYS}", param_hint="--partition-key")
    try:
        cfg, where = load_config(config)
    except (ShipConfigError, ValueError) as exc:
        console.print(f"[red]invalid sources or formats[/red]: {exc}")
        raise typer.Exit(2) from exc
    if not cfg.sources:
        console.print(f"[red]no sources configured[/red] in {where}: add [[sources]] (service, path, format) to "
                      "cali.toml, set CALI_SOURCES, or pass --config examples/cali.toml")
        raise typer.Exit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    url = None if endpoint in (None, "", "aws") else endpoint
    verify: str | bool = str(ca_bundle) if ca_bundle else True
    client = boto_client("kinesis", url, region, verify=verify, read_timeout=20)
    kinesis = KinesisSource(client, stream)
    health = kinesis.healthcheck()
    if not health.ok:
        console.print(f"[red]Kinesis is not ready:[/red] {health.detail}")
        raise typer.Exit(1)
    sources = cfg.to_sources()
    shipper = Shipper(sources, kinesis, offsets, host=host, partition_key=partition_key, flush_after_s=flush_after,
                      dlq_path=offsets.parent / "shipper-dlq.jsonl", formats=cfg.catalog(), rescan_interval_s=rescan)
    console.print(f"shipping {len(sources)} sources from {where} to {stream} at {url or 'AWS'} "
                  f"(partition key: {partition_key}; offsets {offsets})")
    if once:
        put = shipper.run_once()
        put += shipper.run_once(shipper.clock.monotonic() + flush_after + 1)  # close pending multiline events
        shipper.drain()
        shipper.close()
        console.print(f"put {put} records; {shipper.stats}")
        return
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    shipper.run(stop, poll_interval=poll_interval)
    console.print(f"stopped; {shipper.stats}")
