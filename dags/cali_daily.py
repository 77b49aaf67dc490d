"""CALI learns every day: check the archive, alert on bad quality, learn the day's incidents, report.

check_archive (Great Expectations on raw/dt=<day>/)  ->  alert_on_quality_failure (Slack, via the outbox)
                                                    ->  reindex (Ray Job: jobs/reindex.py --date <day>)
                                                    ->  write_report (reports/dt=<day>/report.{json,html})

AWS comes from the amazon provider's connection `aws_default` (`endpoint_url` in its extras for the local
stack); the Ray dashboard address from the Variable `cali_ray_address` or the connection `cali_ray`; the
rest of CALI's settings from the worker's CALI_* environment. docs/batch.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

DEFAULT_ARGS = {"owner": "cali", "retries": 2, "retry_delay": timedelta(minutes=5),
                "execution_timeout": timedelta(minutes=30)}


# A data interval per UTC day: the run for day D starts after D ends, and D is its data_interval_start.
# (A bare "@daily" is a trigger timetable in Airflow 3, whose runs carry no interval.)
@dag(dag_id="cali_daily", schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
     start_date=datetime(2026, 1, 1, tzinfo=UTC), catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS,
     tags=["cali"], doc_md=__doc__)
def cali_daily() -> None:
    @task(execution_timeout=timedelta(minutes=30))
    def check_archive() -> dict:
        from cali.batch import dag_support
        from cali.batch.steps import check_quality

        return check_quality(dag_support.settings(), dag_support.day_of(get_current_context()))

    @task(retries=3, execution_timeout=timedelta(minutes=10))
    def alert_on_quality_failure(quality: dict) -> str | None:
        from cali.batch import dag_support
        from cali.batch.steps import notify_quality

        if quality["success"]:
            return None
        return notify_quality(dag_support.settings(), quality["day"])

    @task(retries=1, execution_timeout=timedelta(hours=2))
    def reindex(quality: dict) -> dict:
        from cali.batch import dag_support
        from cali.batch.steps import reindex as run_reindex

        summary = run_reindex(dag_support.settings(), quality["day"], dag_support.ray_address())
        return {k: summary.get(k) for k in ("day", "records", "alertable", "clusters", "seconds", "job")}

    @task(execution_timeout=timedelta(minutes=10))
    def write_report(quality: dict, alert: str | None, reindexed: dict) -> dict:
        from cali.batch import dag_support
        from cali.batch.steps import write_report as report

        return report(dag_support.settings(), quality["day"])

    quality = check_archive()
    write_report(quality, alert_on_quality_failure(quality), reindex(quality))


cali_daily()
