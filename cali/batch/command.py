"""`cali batch run`: the daily batch without Airflow (checks, the reindex job, the report), for a day or a range."""

from __future__ import annotations

import json
from datetime import date, timedelta

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

batch_app = typer.Typer(help="The daily batch: archive quality checks, learning from the day, the report.",
                        no_args_is_help=True)
console = Console(stderr=True)


def days_between(start: date, end: date) -> list[str]:
    if end < start:
        raise typer.BadParameter(f"--to {end} is before --from {start}")
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{name} must be YYYY-MM-DD, got {value!r}") from exc


@batch_app.command("run")
def run(day: str | None = typer.Option(None, "--date", help="The UTC day to process (YYYY-MM-DD); default yesterday."),
        start: str | None = typer.Option(None, "--from", help="First day of a backfill (with --to)."),
        end: str | None = typer.Option(None, "--to", help="Last day of a backfill, included."),
        ray_address: str | None = typer.Option(None, help="Submit the reindex as a Ray Job to this dashboard URL "
                                               "(http://host:8265); default: run it on a local Ray.")) -> None:
    """Run the checks, the reindex job and the report; one JSON line per day on stdout."""
    from cali.batch.steps import run_day
    from cali.cli import _settings

    if (start is None) != (end is None):
        raise typer.BadParameter("--from and --to go together")
    if day is not None and start is not None:
        raise typer.BadParameter("give --date or --from/--to, not both")
    if start is not None:
        days = days_between(_day(start, "--from"), _day(end, "--to"))  # type: ignore[arg-type]
    else:
        days = [(_day(day, "--date") or date.today() - timedelta(days=1)).isoformat()]
    settings = _settings()
    failed = 0
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=len(days) == 1) as progress:
        task = progress.add_task("backfill", total=len(days))
        for d in days:
            progress.update(task, description=f"batch {d}")
            try:
                out = run_day(settings, d, ray_address)
            except Exception as exc:  # a backfill goes on with the next day and exits 1 at the end
                failed += 1
                console.print(f"[red]{d} failed[/red]: {type(exc).__name__}: {exc}")
                out = {"day": d, "error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(out), flush=True)
            progress.advance(task)
    raise typer.Exit(1 if failed else 0)
