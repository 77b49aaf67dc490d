"""The composition root: builds every adapter from Settings. Actors call these in their own process."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cali.config import Settings
from cali.core.clock import SystemClock
from cali.core.filtering import AlertFilter, ServiceRule
from cali.core.ports import Health

# Ray binds the machine's non-loopback address unless this is 0 (measured); set before ray.init().
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def aws_client(settings: Settings, service: str) -> Any:
    import boto3
    from botocore.config import Config

    aws = settings.aws
    endpoint = aws.kinesis_endpoint_url if service == "kinesis" else aws.endpoint_url
    kwargs: dict[str, Any] = {"region_name": aws.region, "endpoint_url": endpoint,
                              "config": Config(connect_timeout=5, read_timeout=20,
                                               retries={"max_attempts": 3, "mode": "standard"})}
    if aws.access_key_id and aws.secret_access_key:
        kwargs["aws_access_key_id"] = aws.access_key_id.get_secret_value()
        kwargs["aws_secret_access_key"] = aws.secret_access_key.get_secret_value()
    return boto3.session.Session().client(service, **kwargs)


def kinesis_source(settings: Settings) -> Any:
    from cali.sources.kinesis import KinesisSource

    return KinesisSource(aws_client(settings, "kinesis"), settings.kinesis.stream)


def archive(settings: Settings) -> Any:
    from cali.sinks.s3_archive import S3Archive

    return S3Archive(aws_client(settings, "s3"), settings.archive.bucket)


def reports(settings: Settings) -> Any:
    """The daily reports' bucket: batch.reports_bucket (REPORTS_BUCKET on AWS), else the archive bucket."""
    from cali.sinks.s3_reports import S3Reports

    b = settings.batch
    return S3Reports(aws_client(settings, "s3"), b.reports_bucket or settings.archive.bucket, b.reports_prefix)


def _sqlite(settings: Settings, name: str) -> Path:
    d = Path(settings.state.sqlite_dir)
    d.mkdir(parents=True, exist_ok=True)
    return d / name


def _sqlite_checkpoints(s: Settings) -> Any:
    from cali.state.sqlite_checkpoints import SqliteCheckpoints

    return SqliteCheckpoints(_sqlite(s, "checkpoints.db"))


def _dynamodb_checkpoints(s: Settings) -> Any:
    from cali.state.dynamodb_checkpoints import DynamoDBCheckpoints

    return DynamoDBCheckpoints(aws_client(s, "dynamodb"), s.state.checkpoint_table)


def _sqlite_state(s: Settings) -> Any:
    from cali.state.sqlite_state import SqliteState

    return SqliteState(_sqlite(s, "state.db"))


def _dynamodb_state(s: Settings) -> Any:
    from cali.state.dynamodb_state import DynamoDBState

    return DynamoDBState(aws_client(s, "dynamodb"), s.state.state_table)


def _sqlite_outbox(s: Settings) -> Any:
    from cali.state.sqlite_outbox import SqliteOutbox

    return SqliteOutbox(_sqlite(s, "outbox.db"))


def _dynamodb_outbox(s: Settings) -> Any:
    from cali.state.dynamodb_outbox import DynamoDBOutbox

    return DynamoDBOutbox(aws_client(s, "dynamodb"), s.state.outbox_table)


# Backends are chosen from explicit tables, never by building names from strings.
CHECKPOINTS: dict[str, Callable[[Settings], Any]] = {"sqlite": _sqlite_checkpoints,
                                                      "dynamodb": _dynamodb_checkpoints}
STATE: dict[str, Callable[[Settings], Any]] = {"sqlite": _sqlite_state, "dynamodb": _dynamodb_state}
OUTBOX: dict[str, Callable[[Settings], Any]] = {"sqlite": _sqlite_outbox, "dynamodb": _dynamodb_outbox}


def checkpoints(settings: Settings) -> Any:
    return CHECKPOINTS[settings.state.backend](settings)


def state_store(settings: Settings) -> Any:
    return STATE[settings.state.backend](settings)


def outbox(settings: Settings) -> Any:
    return OUTBOX[settings.state.backend](settings)


def webhook_secret(settings: Settings) -> Any:
    """The Slack webhook URL's source: the setting itself, else Secrets Manager; never printed."""
    from cali.secrets.aws import SecretsManagerSecret
    from cali.secrets.env import EnvSecret

    slack = settings.slack
    if slack.webhook_url is not None:
        return _Literal(slack.webhook_url)
    if slack.webhook_secret_id:
        return SecretsManagerSecret(aws_client(settings, "secretsmanager"), slack.webhook_secret_id)
    return EnvSecret("SLACK_WEBHOOK_URL")


class _Literal:
    def __init__(self, value: Any) -> None:
        self._value = value

    def get(self) -> Any:
        return self._value

    def healthcheck(self) -> Health:
        return Health("slack-webhook", True, "set in settings")


def notifier(settings: Settings) -> Any:
    from cali.notify.slack import SlackNotifier
    from cali.notify.slack_retry import RetryPolicy

    slack = settings.slack
    policy = RetryPolicy(max_retries=slack.max_retries, timeout=slack.timeout_s)
    if slack.bot_token is not None:
        return SlackNotifier(bot_token=slack.bot_token, channel=slack.channel,
                             dashboard_url_template=slack.dashboard_url, policy=policy)
    return SlackNotifier(webhook_url=webhook_secret(settings).get(), dashboard_url_template=slack.dashboard_url,
                         policy=policy)


def alert_filter(settings: Settings) -> AlertFilter:
    a = settings.alerting
    return AlertFilter(min_level=a.min_level, rules={
        name: ServiceRule(service=name, min_level=r.min_level, mute=tuple(r.mute)) for name, r in a.services.items()})


def clock() -> SystemClock:
    return SystemClock()


def init_ray(settings: Settings, *, num_cpus: float | None = None) -> Any:
    """Starts or joins Ray; locally every listener is bound to 127.0.0.1."""
    import ray

    os.environ.update(LOOPBACK_ENV)
    if ray.is_initialized():
        return ray.get_runtime_context()
    if settings.ray.address:
        return ray.init(address=settings.ray.address, namespace=settings.ray.namespace)
    # The local Ray's workers inherit this environment: that is how actors get secrets without them
    # travelling as actor arguments (cali.config.without_secrets).
    from cali.config import export_secrets

    export_secrets(settings, os.environ)
    return ray.init(namespace=settings.ray.namespace, include_dashboard=True, dashboard_host="127.0.0.1",
                    dashboard_port=settings.ray.dashboard_port, num_cpus=num_cpus or os.cpu_count(),
                    logging_level="WARNING", log_to_driver=False, configure_logging=True,
                    runtime_env={"env_vars": LOOPBACK_ENV})


def _llm(settings: Settings) -> Any:
    from cali.llm.openai_chat import OpenAIChat

    assert settings.analysis.llm is not None
    return OpenAIChat.from_settings(settings.analysis.llm)


def healthchecks(settings: Settings) -> list[Health]:
    """One check per configured external system, each bounded by the adapters' own timeouts."""
    checks: list[tuple[str, Callable[[], Any]]] = [
        ("kinesis", lambda: kinesis_source(settings)), ("s3", lambda: archive(settings)),
        ("checkpoints", lambda: checkpoints(settings)), ("state", lambda: state_store(settings)),
        ("outbox", lambda: outbox(settings)), ("slack-secret", lambda: webhook_secret(settings)),
        ("slack", lambda: notifier(settings)),
    ]
    if settings.analysis.llm is not None:
        checks.append(("llm", lambda: _llm(settings)))
    out = []
    for name, build in checks:
        try:
            out.append(build().healthcheck())
        except Exception as exc:  # a check reports; it never raises
            out.append(Health(name, False, f"{type(exc).__name__}: {exc}"))
    return out


def analysis_followup(settings: Settings, outbox: Any, clock: Any, on_queued: Callable[[], None]) -> Any:
    """The analysis after each FIRST alert, through the Serve app's DeploymentHandle; None when disabled."""
    a = settings.analysis
    if not a.enabled:
        return None
    from cali.analysis.budget import DailyBudget
    from cali.serve.client import ServeAnalysisClient
    from cali.service.followup import AnalysisFollowup

    return AnalysisFollowup(ServeAnalysisClient(a.app_name, a.deployment), outbox, clock, on_queued=on_queued,
                            budget=DailyBudget(clock, max_calls=a.daily_llm_budget),
                            timeout_s=a.timeout_s, cache_ttl_s=a.cache_ttl_s)


def service_groups(settings: Settings) -> Any:
    """One template miner per service (cali.grouping), as every tracker and the batch job group."""
    from cali.core.incidents import ServiceGroups
    from cali.grouping.miner import TemplateMiner

    return ServiceGroups(TemplateMiner, TemplateMiner.from_state)


def worker_id(settings: Settings) -> str:
    """The lease owner for this pipeline: the setting, else host, namespace and the Ray cluster's GCS."""
    if settings.pipeline.worker_id:
        return settings.pipeline.worker_id
    import socket

    import ray

    gcs = ray.get_runtime_context().gcs_address if ray.is_initialized() else "no-ray"
    return f"{socket.gethostname()}:{settings.ray.namespace}:{gcs}"
