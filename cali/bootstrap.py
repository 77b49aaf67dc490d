"""The composition root: builds every adapter from Settings. Actors call these in their own process."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cali.config import AwsSettings, Settings, StateSettings
from cali.core.clock import SystemClock
from cali.core.filtering import AlertFilter, ServiceRule
from cali.core.ports import Health
from cali.rayenv import LOOPBACK_ENV


def aws_client(settings: Settings, service: str) -> Any:
    import boto3
    from botocore.config import Config

    aws = settings.aws
    endpoint = aws.kinesis_endpoint_url if service == "kinesis" else aws.endpoint_url
    kwargs: dict[str, Any] = {"region_name": aws.region, "endpoint_url": endpoint,
                              "config": Config(connect_timeout=aws.connect_timeout_s, read_timeout=aws.read_timeout_s,
                                               retries={"total_max_attempts": aws.max_attempts, "mode": "standard"})}
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


def _sqlite_index(s: Settings) -> Any:
    from cali.index.sqlite_fts import SqliteIndex

    i = s.index
    return SqliteIndex(i.sqlite_path or _sqlite(s, "index.db"), retention_days=i.retention_days,
                       max_bytes=int(i.max_mb * 1024 * 1024))


def _opensearch_index(s: Settings) -> Any:
    from cali.index.opensearch import OpenSearchIndex, client_from_settings

    i = s.index
    if not i.opensearch_url:
        raise ValueError("CALI_INDEX__BACKEND=opensearch needs CALI_INDEX__OPENSEARCH_URL (the domain endpoint)")
    password = i.opensearch_password.get_secret_value() if i.opensearch_password else None
    client = client_from_settings(i.opensearch_url, auth=i.opensearch_auth, region=s.aws.region,
                                  username=i.opensearch_username, password=password)
    return OpenSearchIndex(client, retention_days=i.retention_days)


INDEX: dict[str, Callable[[Settings], Any]] = {"sqlite": _sqlite_index, "opensearch": _opensearch_index}


def index(settings: Settings) -> Any | None:
    """The log and incident index (cali.index.port.Index), or None when CALI_INDEX__BACKEND=off."""
    backend = settings.index.backend
    return None if backend == "off" else INDEX[backend](settings)


def log_feed(settings: Settings, shard_id: str, dead_letters: Any) -> Any | None:
    """A shard's feed of archived rows into the index (started, or None when indexing is off)."""
    writer = index(settings)
    if writer is None:
        return None
    from cali.service.index_feed import LogFeed

    feed = LogFeed(writer, levels=settings.index.levels, shard_id=shard_id, clock=clock(),
                   dead_letters=dead_letters, max_rows=settings.index.queue_max_rows)
    feed.start()
    return feed


def incident_feed(settings: Settings) -> Any | None:
    """The Alerter's feed of delivered alerts into incident documents (started, or None)."""
    writer = index(settings)
    if writer is None:
        return None
    from cali.service.index_feed import IncidentFeed

    feed = IncidentFeed(writer)
    feed.start()
    return feed


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
    bot_token = slack.bot_token
    if bot_token is None and slack.bot_token_secret_id:
        from cali.secrets.aws import SecretsManagerSecret

        bot_token = SecretsManagerSecret(aws_client(settings, "secretsmanager"), slack.bot_token_secret_id).get()
    if bot_token is not None:
        return SlackNotifier(bot_token=bot_token, channel=slack.channel,
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
    """Starts or joins Ray; locally every listener is bound to 127.0.0.1 (see cali/rayenv.py)."""
    from cali import rayenv

    local = rayenv.is_local(settings.ray.address)
    if local:
        rayenv.prepare(None)  # in time only if nothing imported ray yet: the check says so
        rayenv.check_before_start()
    import ray

    if ray.is_initialized():
        return ray.get_runtime_context()
    if not local:
        return ray.init(address=settings.ray.address, namespace=settings.ray.namespace)
    # The local Ray's workers inherit this environment: that is how actors get secrets without them
    # travelling as actor arguments (cali.config.without_secrets).
    from cali.config import export_secrets

    export_secrets(settings, os.environ)
    # address="local": a Ray of our own, never one a `ray start` on this machine recorded
    ctx = ray.init(address="local", namespace=settings.ray.namespace, include_dashboard=True,
                   dashboard_host="127.0.0.1", dashboard_port=settings.ray.dashboard_port,
                   num_cpus=num_cpus or os.cpu_count(), logging_level="WARNING", log_to_driver=False,
                   configure_logging=True,
                   runtime_env={"env_vars": LOOPBACK_ENV})
    try:
        rayenv.check_after_start(ray)
    except rayenv.RayEnvError:
        ray.shutdown()
        raise
    return ctx


def _llm(settings: Settings) -> Any:
    from cali.llm.openai_chat import OpenAIChat

    assert settings.analysis.llm is not None
    return OpenAIChat.from_settings(settings.analysis.llm)


# A start-up check must answer in seconds: one attempt, short timeouts, and one deadline for them all.
PROBE_AWS = {"connect_timeout_s": 2.0, "read_timeout_s": 3.0, "max_attempts": 1}
PROBE_DEADLINE_S = 8.0


def healthchecks(settings: Settings, deadline_s: float = PROBE_DEADLINE_S) -> list[Health]:
    """One check per configured external system, run together; a check that has not answered by the
    deadline is reported as not answering, with the endpoint and the variable that sets it."""
    from cali.service.health import Check, run_checks

    probe = settings.model_copy(update={"aws": settings.aws.model_copy(update=PROBE_AWS)})
    aws = settings.aws
    ddb = (aws.endpoint_url or f"DynamoDB in {aws.region}", "CALI_AWS__ENDPOINT_URL")
    checks = [
        Check("kinesis", lambda: kinesis_source(probe), aws.kinesis_endpoint_url or f"Kinesis in {aws.region}",
              "CALI_AWS__KINESIS_ENDPOINT_URL"),
        Check("s3", lambda: archive(probe), aws.endpoint_url or f"S3 in {aws.region}", "CALI_AWS__ENDPOINT_URL"),
        Check("checkpoints", lambda: checkpoints(probe), *_state_where(settings, ddb)),
        Check("state", lambda: state_store(probe), *_state_where(settings, ddb)),
        Check("outbox", lambda: outbox(probe), *_state_where(settings, ddb)),
        Check("slack-secret", lambda: webhook_secret(probe), aws.endpoint_url or f"Secrets Manager in {aws.region}",
              "CALI_SLACK__WEBHOOK_URL or CALI_SLACK__WEBHOOK_SECRET_ID"),
        Check("slack", lambda: notifier(probe), "Slack", "CALI_SLACK__BOT_TOKEN / CALI_SLACK__WEBHOOK_URL"),
    ]
    if settings.analysis.llm is not None:
        checks.append(Check("llm", lambda: _llm(probe), settings.analysis.llm.base_url,
                            "CALI_ANALYSIS__LLM__BASE_URL"))
    if settings.index.backend != "off":
        i = settings.index
        where = (str(i.opensearch_url), "CALI_INDEX__OPENSEARCH_URL") if i.backend == "opensearch" \
            else (str(i.sqlite_path or settings.state.sqlite_dir), "CALI_INDEX__SQLITE_PATH")
        checks.append(Check("index", lambda: index(probe), *where))
    return run_checks(checks, deadline_s)


def _state_where(settings: Settings, ddb: tuple[str, str]) -> tuple[str, str]:
    if settings.state.backend == "sqlite":
        return str(settings.state.sqlite_dir), "CALI_STATE__SQLITE_DIR"
    return ddb


def analysis_followup(settings: Settings, outbox: Any, clock: Any, on_queued: Callable[[], None]) -> Any:
    """The analysis after each FIRST alert, through the Serve app's DeploymentHandle; None when disabled."""
    a = settings.analysis
    if not a.enabled:
        return None
    from cali.serve.client import ServeAnalysisClient
    from cali.service.followup import AnalysisFollowup

    # The LLM budget is enforced by the Analyzer deployment (llm_budget below), not here.
    return AnalysisFollowup(ServeAnalysisClient(a.app_name, a.deployment), outbox, clock, on_queued=on_queued,
                            use_llm=a.daily_llm_budget > 0, timeout_s=a.timeout_s, cache_ttl_s=a.cache_ttl_s)


def llm_budget(max_calls: int, state: StateSettings, aws: AwsSettings, clock: Any = None) -> Any:
    """The daily LLM budget in the state store: every Analyzer replica builds one over the same key, so the
    HTTP path and the Alerter's follow-ups spend from one count that survives restarts. For processes
    that hold no Settings of their own (Serve replicas get the state and AWS sections in their args;
    credentials come from their environment)."""
    from cali.analysis.budget import StoredDailyBudget

    store = state_store(Settings.model_construct(state=state, aws=aws))
    return StoredDailyBudget(store, clock or SystemClock(), max_calls=max_calls)


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
