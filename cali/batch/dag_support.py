"""What the Airflow DAG's tasks need from Airflow: settings with AWS from its connection, the Ray address, the day.

Imported inside the tasks only (the scheduler parses dags/cali_daily.py every few seconds).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from cali.config import Settings, load_settings

RAY_VARIABLE = "cali_ray_address"
RAY_CONNECTION = "cali_ray"


def settings(aws_conn_id: str = "aws_default") -> Settings:
    """CALI's settings from the worker's environment, with region, endpoint and keys from the amazon
    provider's connection (`endpoint_url` in its extras points at the local stack)."""
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    cfg = AwsBaseHook(aws_conn_id=aws_conn_id, client_type="s3").conn_config
    base = load_settings()
    update: dict[str, Any] = {"region": cfg.region_name or base.aws.region,
                              "endpoint_url": cfg.get_service_endpoint_url("s3") or base.aws.endpoint_url}
    if cfg.aws_access_key_id and cfg.aws_secret_access_key:
        update |= {"access_key_id": SecretStr(cfg.aws_access_key_id),
                   "secret_access_key": SecretStr(cfg.aws_secret_access_key)}
    return base.model_copy(update={"aws": base.aws.model_copy(update=update)})


def ray_address() -> str:
    """The Ray dashboard URL: the Airflow Variable `cali_ray_address`, else the connection `cali_ray`."""
    from airflow.sdk import Connection, Variable

    address = Variable.get(RAY_VARIABLE, default=None)
    if address:
        return str(address)
    try:
        conn = Connection.get(RAY_CONNECTION)
    except Exception as exc:  # AirflowNotFoundException, in whichever module this Airflow keeps it
        raise RuntimeError(f"no Ray address: set the Airflow Variable {RAY_VARIABLE} (e.g. http://cali-head-svc"
                           f".cali.svc.cluster.local:8265) or a connection {RAY_CONNECTION}") from exc
    return f"{conn.schema or 'http'}://{conn.host}:{conn.port or 8265}"


def day_of(context: Any) -> str:
    """The UTC day a run processes: its data interval's start (a daily run covers [day, day + 1)); the day
    before the run for a run without an interval (a manual trigger)."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is not None and end is not None and end > start:
        return start.astimezone(UTC).date().isoformat()
    at = context.get("logical_date") or context.get("run_after") or datetime.now(UTC)
    return (at.astimezone(UTC) - timedelta(days=1)).date().isoformat()
