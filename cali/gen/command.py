"""The `cali generate` command; cali/cli.py registers it with app.command()(generate)."""

from __future__ import annotations

from pathlib import Path

import typer

from cali.gen.writer import run_generate


def generate(
    out: Path | None = typer.Option(
        None, "--out", help="Directory for <service>.log files; stdout if omitted."
    ),
    seed: int = typer.Option(0, "--seed", help="Same seed, same lines."),
    rate: float = typer.Option(200.0, "--rate", help="Background lines per second (simulated or real)."),
    duration: float | None = typer.Option(None, "--duration", help="Seconds of traffic; forever if omitted."),
    realtime: bool = typer.Option(
        False, "--realtime/--batch", help="Pace to --rate on the wall clock (timestamps from now)."
    ),
    max_bytes: int = typer.Option(10 * 1024 * 1024, "--max-bytes", help="Rotate a file past this size."),
    backups: int = typer.Option(3, "--backups", help="Rotated files kept per service (.1 ... .N)."),
) -> None:
    """Write simulated logs of several services, with scripted incidents, as Fluent Bit would tail them."""
    if duration is None and not realtime:
        raise typer.BadParameter("without --duration the run never ends: add --duration or --realtime")
    try:
        summary = run_generate(
            out,
            seed=seed,
            rate=rate,
            duration=duration,
            realtime=realtime,
            max_bytes=max_bytes,
            backups=backups,
        )
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    kinds = sorted({i["kind"] for i in summary["incidents"]})
    typer.echo(
        f"{summary['lines']} lines, {summary['events']} events ({summary['alertable_events']} WARN+), "
        f"{len(summary['incidents'])} incidents: {', '.join(kinds)}",
        err=True,
    )
