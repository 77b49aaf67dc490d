"""`cali demo --learn`: at the end of the demo, the day's batch (checks, the Ray Job, the report)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rich.console import Console

from cali.config import BatchSettings, Settings

log = logging.getLogger(__name__)


def demo_days(started: datetime, ended: datetime) -> list[str]:
    """The UTC days the demo's records arrived on (the archive's partitions): usually one."""
    first, last = started.astimezone(UTC).date(), ended.astimezone(UTC).date()
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def learn_from_demo(settings: Settings, started: datetime, dashboard: str, services: list[str],
                    console: Console) -> dict[str, Any]:
    """Runs the batch for the demo's day(s) as a Ray Job on the demo's Ray; the summary's extra fields.

    The job goes through the Job Submission API of the demo's dashboard. `ray.init()` always puts the
    dashboard's job agent on port 52365: when another Ray on the machine holds it, the Jobs API answers
    "No available agent", and the job runs in the demo's own driver instead (said on the console).
    """
    from cali.batch import steps
    from cali.batch.jobs import JobFailed

    batch = BatchSettings.model_validate(settings.batch.model_dump() | {
        "known_services": services, "task_cpus": 0.25, "job_timeout_s": 900})
    settings = settings.model_copy(update={"batch": batch})
    learned = failures = 0
    for day in demo_days(started, datetime.now(UTC)):
        date.fromisoformat(day)
        console.print(f"running the daily batch for {day} (quality checks, reindex Ray Job, report) ...")
        quality = steps.check_quality(settings, day)
        if not quality["success"]:
            steps.notify_quality(settings, day)
        try:
            steps.reindex(settings, day, ray_address=dashboard)
        except (JobFailed, RuntimeError) as exc:
            if "No available agent" not in str(exc):
                raise
            console.print(f"[yellow]the Ray Jobs API is not available ({exc}); running the job in the demo's "
                          "driver[/yellow]")
            steps.reindex(settings, day)
        report = steps.write_report(settings, day)
        console.print(f"report: {report['report_html']}")
        learned += report["learned"]
        failures += report["quality_failures"]
    return {"learned": learned, "quality_failures": failures}
