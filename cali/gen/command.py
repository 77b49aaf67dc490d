"""The `cali generate` command; cali/cli.py registers it with app.command()(generate)."""

from __future__ import annotations

from pathlib import Path

import typer

from cali.core.parsing import Source
from cali.gen.sources import DEMO_SOURCES
from cali.gen.writer import run_generate


def _configured(config: Path) -> list[Source]:
    from cali.ship.settings import GLOB_CHARS, ShipConfigError, load_ship_config

    try:
        cfg = load_ship_config(config)
    except ShipConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config") from exc
    globs = [s.path for s in cfg.sources if GLOB_CHARS & set(s.path)]
    if globs:
        raise typer.BadParameter(f"cannot write to a glob: {globs}; name one file per source", param_hint="--config")
    if not cfg.sources:
        raise typer.BadParameter(f"{config} configures no [[sources]]", param_hint="--config")
    return cfg.to_sources()


def generate(
    out: Path | None = typer.Option(
        None, "--out", help="Directory for the demo's <service>.log files; stdout if omitted."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="Write each [[sources]] file of this TOML (e.g. examples/cali.toml) where it is "
        "configured, so the shipper and Fluent Bit tail what is written. Overrides --out."
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
    sources = list(DEMO_SOURCES)
    if config is not None:
        sources, out = _configured(config), Path(".")
    try:
        summary = run_generate(
            out,
            sources=sources,
            seed=seed,
            rate=rate,
            duration=duration,
            realtime=realtime,
            max_bytes=max_bytes,
            backups=backups,
        )
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except ValueError as exc:
        typer.echo(f"cannot generate: {exc}", err=True)
        raise typer.Exit(2) from exc
    kinds = sorted({i["kind"] for i in summary["incidents"]})
    typer.echo(
        f"{summary['lines']} lines, {summary['events']} events ({summary['alertable_events']} WARN+), "
        f"{len(summary['incidents'])} incidents: {', '.join(kinds)}",
        err=True,
    )
