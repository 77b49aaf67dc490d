"""The daily batch's steps, one function each: the Airflow DAG's tasks, `cali batch run` and the demo call them.

Steps hand over through the reports bucket (reports/dt=<day>/quality.json, reindex.json), so each can run
in another process (an Airflow worker, a Ray Job) and be retried alone.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlparse

from cali import bootstrap
from cali.batch.quality import check_day
from cali.batch.reindex import REPORT_NAME as REINDEX_NAME
from cali.batch.report import QUALITY_NAME, REPORT_HTML, REPORT_JSON, build_report, render_html
from cali.config import Settings

log = logging.getLogger(__name__)


def check_quality(settings: Settings, day: str) -> dict[str, Any]:
    """Great Expectations on the day's archive; writes quality.json; returns its summary (no checks)."""
    b = settings.batch
    quality = check_day(bootstrap.archive(settings), day, dlq_ratio_max=b.dlq_ratio_max,
                        known_services=b.known_services, message_max_chars=b.message_max_chars,
                        timestamp_slack_s=b.timestamp_slack_s)
    uri = bootstrap.reports(settings).put_json(day, QUALITY_NAME, quality)
    return {k: v for k, v in quality.items() if k != "checks"} | {"uri": uri}


def notify_quality(settings: Settings, day: str, now: datetime | None = None) -> str | None:
    """On a failed day, one Slack alert through the outbox (cali.batch.notify); records what happened."""
    from cali.batch.notify import enqueue_and_deliver, quality_alert

    reports = bootstrap.reports(settings)
    quality = reports.get_json(day, QUALITY_NAME)
    if quality is None:
        raise FileNotFoundError(f"no {reports.key(day, QUALITY_NAME)} in s3://{reports.bucket}: run the checks first")
    alert = quality_alert(quality, now or datetime.now(UTC), env=settings.alerting.env,
                          report_uri=f"s3://{reports.bucket}/{reports.key(day, REPORT_HTML)}")
    if alert is None:
        return None
    status = enqueue_and_deliver(alert, bootstrap.outbox(settings), lambda: bootstrap.notifier(settings),
                                 bootstrap.checkpoints(settings), settings.kinesis.stream,
                                 settings.pipeline.lease_ttl_s, bootstrap.clock())
    reports.put_json(day, QUALITY_NAME, quality | {"alert": f"{alert.alert_id} {status}"})
    log.info("quality alert %s: %s", alert.alert_id, status)
    return status


def is_local_ray(address: str) -> bool:
    return (urlparse(address).hostname or address.split(":")[0]) in ("127.0.0.1", "localhost", "::1")


def reindex(settings: Settings, day: str, ray_address: str | None = None) -> dict[str, Any]:
    """The reindex job: submitted to `ray_address` (a dashboard URL) and waited for, or run on the local Ray.

    A loopback cluster does not carry CALI's configuration, so the job gets these settings (no secrets:
    a local Ray's workers inherit them from the process that started it); a cluster's pods have their own.
    """
    if ray_address:
        from cali.batch.jobs import submit_and_wait

        job = submit_and_wait(ray_address, settings, day, pass_settings=is_local_ray(ray_address))
        summary = bootstrap.reports(settings).get_json(day, REINDEX_NAME)
        if summary is None:
            raise RuntimeError(f"Ray Job {job['job_id']} succeeded but wrote no {REINDEX_NAME} for {day}")
        return summary | {"job": job}
    from cali.batch.reindex import run_reindex

    bootstrap.init_ray(settings)
    return run_reindex(settings, day)


def write_report(settings: Settings, day: str, now: datetime | None = None) -> dict[str, Any]:
    """report.json and report.html under reports/dt=<day>/ from what the other steps left there."""
    reports = bootstrap.reports(settings)
    quality = reports.get_json(day, QUALITY_NAME)
    report = build_report(day, quality, reports.get_json(day, REINDEX_NAME), now or datetime.now(UTC),
                          alert=(quality or {}).get("alert"))
    json_uri = reports.put_json(day, REPORT_JSON, report)
    html_uri = reports.put(day, REPORT_HTML, render_html(report).encode(), "text/html; charset=utf-8")
    return {"day": day, "learned": report["learned"], "quality_failures": report["quality_failures"],
            "missing": report["missing"], "report_json": json_uri, "report_html": html_uri}


def run_day(settings: Settings, day: str, ray_address: str | None = None) -> dict[str, Any]:
    """Checks, alert, reindex, report for one day, as the DAG runs them."""
    date.fromisoformat(day)
    quality = check_quality(settings, day)
    alert = notify_quality(settings, day) if not quality["success"] else None
    reindexed = reindex(settings, day, ray_address)
    out = write_report(settings, day)
    return out | {"records": quality["records"], "alertable": reindexed.get("alertable"),
                  "clusters": reindexed.get("clusters"), "quality_alert": alert}
