"""One Settings object: env CALI_<SECTION>__<FIELD>, optional cali.toml, validated at start-up."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from cali.core.records import Level
from cali.llm.settings import OpenAIChatSettings
from cali.ship.settings import FormatSettings, SourceSettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AwsSettings(_Section):
    region: str = "us-east-1"
    # None on AWS; the local stack's moto server locally. Kinesis has its own endpoint because
    # locally it is kinesalite, not moto.
    endpoint_url: str | None = None
    kinesis_endpoint_url: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    # Per call; `cali health` and `cali run`'s start-up checks use their own short ones (bootstrap.healthchecks).
    connect_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(20.0, gt=0)
    max_attempts: int = Field(4, ge=1, le=10)  # in all, the first try included (botocore's total_max_attempts)


class KinesisSettings(_Section):
    stream: str = "cali-logs"
    start: Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"] = "TRIM_HORIZON"
    start_timestamp: datetime | None = None
    # Kinesis allows 5 GetRecords calls/s per shard, shared by every consumer of the shard.
    poll_interval_s: float = Field(0.25, ge=0.2, le=10)
    max_records: int = Field(10_000, ge=1, le=10_000)
    rescan_interval_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _timestamp_needed(self) -> KinesisSettings:
        if self.start == "AT_TIMESTAMP" and self.start_timestamp is None:
            raise ValueError("start=AT_TIMESTAMP needs start_timestamp (CALI_KINESIS__START_TIMESTAMP, ISO-8601)")
        return self


class ArchiveSettings(_Section):
    bucket: str = "cali-archive"
    # Records buffer this long before one archive object is written and the shard checkpointed.
    flush_interval_s: float = Field(1.0, gt=0)
    flush_max_records: int = Field(5_000, ge=1)
    # Rows a reader keeps while S3 or the checkpoint store is down; past it alerting goes on and the
    # rows are read from Kinesis again once the archive is back (docs/contracts.md).
    max_pending_mb: float = Field(128.0, gt=0)


class StateSettings(_Section):
    backend: Literal["sqlite", "dynamodb"] = "sqlite"
    sqlite_dir: Path = Path(".local/state")
    checkpoint_table: str = "cali-checkpoints"
    state_table: str = "cali-state"
    outbox_table: str = "cali-outbox"


class SlackSettings(_Section):
    webhook_url: SecretStr | None = None
    # Name or ARN in AWS Secrets Manager holding the webhook URL; used when webhook_url is unset.
    webhook_secret_id: str | None = None
    bot_token: SecretStr | None = None
    # Name or ARN in AWS Secrets Manager holding the bot token (xoxb-...); used when bot_token is unset.
    bot_token_secret_id: str | None = None
    channel: str | None = None
    dashboard_url: str | None = None  # template: {service}, {trace_id}, {fingerprint}
    timeout_s: float = Field(5.0, gt=0)
    max_retries: int = Field(4, ge=0, le=10)

    @model_validator(mode="after")
    def _bot_needs_channel(self) -> SlackSettings:
        if (self.bot_token is not None or self.bot_token_secret_id) and not self.channel:
            raise ValueError("bot_token is set but channel is not: set CALI_SLACK__CHANNEL (e.g. #alerts)")
        return self


class ServiceRuleSettings(_Section):
    min_level: Level | None = None
    mute: list[str] = []


class AlertingSettings(_Section):
    min_level: Level = Level.WARN
    window_s: float = Field(300.0, gt=0)
    trackers: int = Field(1, ge=1, le=64)
    services: dict[str, ServiceRuleSettings] = {}
    env: str | None = None
    # Trackers unavailable this long (restarting, store down): the batch goes to the DLQ with the reason
    # and the shard reads on, rather than stalling every shard behind one tracker.
    send_give_up_s: float = Field(300.0, gt=0)


class AnalysisSettings(_Section):
    # After each FIRST alert, the Alerter asks the Serve app (`cali serve`) for an analysis and posts it
    # after the alert. Off: alerts only.
    enabled: bool = False
    app_name: str = "cali-analysis"
    deployment: str = "Analyzer"
    timeout_s: float = Field(20.0, gt=0)
    cache_ttl_s: float = Field(3600.0, ge=0)  # a repeat of a fingerprint reuses its analysis
    # LLM calls per UTC day, HTTP and follow-ups together; `cali serve`/`cali demo` hand it to the Analyzer,
    # which counts in the state store (docs/analysis.md). Past it, retrieval-only; 0 turns the LLM off.
    daily_llm_budget: int = Field(500, ge=0)
    kb_uri: str = "./data/kb.db"  # for `cali analyze` and `cali kb`; Serve reads its own config
    llm: OpenAIChatSettings | None = None  # None: retrieval-only (no LLM configured)


class RaySettings(_Section):
    address: str | None = None  # None: start or join a local Ray bound to 127.0.0.1
    namespace: str = "cali"
    dashboard_port: int = 8265
    reader_cpus: float = Field(0.25, gt=0)
    tracker_cpus: float = Field(0.25, gt=0)
    alerter_cpus: float = Field(0.1, gt=0)
    indexer_cpus: float = Field(0.05, gt=0)  # one Indexer per reader, when the index is on


class PipelineSettings(_Section):
    # Who holds leases: one id per pipeline (Ray cluster). Two clusters on one stream (a RayService
    # upgrade) must differ; default: <hostname>:<ray namespace>:<GCS address>.
    worker_id: str | None = None
    lease_ttl_s: float = Field(20.0, ge=3)  # a lease not renewed this long may be taken by another worker
    # `cali run` gives up (exit 1) when the actors stay unreachable, or checkpoints do not move while
    # records wait, for this long.
    stall_s: float = Field(120.0, gt=0)
    check_interval_s: float = Field(10.0, gt=0)


class IndexSettings(_Section):
    # Where logs and incidents are searchable (the console, Grafana): SQLite FTS5 locally, OpenSearch in AWS.
    backend: Literal["sqlite", "opensearch", "off"] = "sqlite"
    levels: list[Level] = [Level.INFO, Level.WARN, Level.ERROR, Level.FATAL]  # logs indexed at these levels
    retention_days: int = Field(14, ge=1)
    max_mb: float = Field(2048.0, gt=0)  # sqlite: oldest logs go past this size too
    sqlite_path: Path | None = None  # default: index.db in state.sqlite_dir
    opensearch_url: str | None = None  # https://vpc-cali-logs-....es.amazonaws.com
    opensearch_auth: Literal["sigv4", "basic", "none"] = "sigv4"
    opensearch_username: str | None = None
    opensearch_password: SecretStr | None = None
    queue_max_rows: int = Field(200_000, ge=1_000)  # past it the oldest waiting rows are dropped (S3 has them)


class BatchSettings(_Section):
    """The daily batch (`cali batch run`, the Airflow DAG, jobs/reindex.py); docs/batch.md."""

    reports_bucket: str | None = None  # None: the archive bucket (locally); REPORTS_BUCKET on AWS
    reports_prefix: str = "reports/"
    dlq_ratio_max: float = Field(0.01, ge=0, le=1)  # dead-lettered / (archived + dead-lettered) per day
    known_services: list[str] = []  # an unknown service is a warning; empty: not checked
    message_max_chars: int = Field(32_768, ge=1)
    timestamp_slack_s: float = Field(300.0, ge=0)  # arrival lag tolerated around the partition's day
    # Cosine similarity from which a cluster is the same incident as a knowledge-base entry.
    match_threshold: float = Field(0.9, gt=0, le=1)
    embedder: Literal["minilm", "hashing"] = "minilm"  # must be the knowledge base's embedder
    embed_actors: int = Field(1, ge=1, le=32)  # size of the embedding actor pool (map_batches concurrency)
    # Ray CPUs per read task and per embedding actor: below 1 so the job fits beside a running Serve app.
    task_cpus: float = Field(0.5, gt=0, le=8)
    top_clusters: int = Field(20, ge=1, le=500)
    # The Ray Job's entry point on the cluster; {date} is filled in. None: python jobs/reindex.py from
    # this checkout when it has one (local Ray), else /app/jobs/reindex.py (the image).
    job_entrypoint: str | None = None
    job_timeout_s: float = Field(3600.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALI_", env_nested_delimiter="__", extra="forbid",
                                      toml_file="cali.toml")

    aws: AwsSettings = AwsSettings()
    kinesis: KinesisSettings = KinesisSettings()
    archive: ArchiveSettings = ArchiveSettings()
    state: StateSettings = StateSettings()
    slack: SlackSettings = SlackSettings()
    alerting: AlertingSettings = AlertingSettings()
    ray: RaySettings = RaySettings()
    analysis: AnalysisSettings = AnalysisSettings()
    pipeline: PipelineSettings = PipelineSettings()
    index: IndexSettings = IndexSettings()
    batch: BatchSettings = BatchSettings()
    # What `cali ship` and `cali fluentbit render` read: [[sources]]/[[formats]] or CALI_SOURCES (JSON).
    sources: list[SourceSettings] = []
    formats: list[FormatSettings] = []

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(**overrides: object) -> Settings:
    """Reads env and cali.toml; raises SettingsError with every bad field named."""
    return Settings(**overrides)


def local_settings(*, kinesis_endpoint: str, aws_endpoint: str, state_dir: Path, webhook_url: str | None,
                   stream: str = "cali-logs", bucket: str = "cali-archive", **extra: object) -> Settings:
    """Settings pointing at the local stack (demo and tests)."""
    slack = {"webhook_url": webhook_url} if webhook_url else {"webhook_secret_id": "cali/slack-webhook"}
    base = {
        "aws": {"region": "us-east-1", "endpoint_url": aws_endpoint, "kinesis_endpoint_url": kinesis_endpoint,
                "access_key_id": "testing", "secret_access_key": "testing"},
        "kinesis": {"stream": stream},
        "archive": {"bucket": bucket},
        "state": {"backend": "sqlite", "sqlite_dir": state_dir},
        "slack": slack,
    }
    for section, values in extra.items():
        base.setdefault(section, {}).update(values)  # type: ignore[union-attr]
    return Settings.model_validate(base)


# Secrets never travel as Ray actor arguments (they would sit in the GCS and in task specs): actors get
# Settings without them and read each from its environment variable, which the driver exports before it
# starts a local Ray (workers inherit it) and a cluster sets from its own Secret.
SECRET_FIELDS: tuple[tuple[str, ...], ...] = (("aws", "access_key_id"), ("aws", "secret_access_key"),
                                                ("slack", "webhook_url"), ("slack", "bot_token"),
                                                ("analysis", "llm", "api_key"), ("index", "opensearch_password"))


def secret_env(path: tuple[str, ...]) -> str:
    return "CALI_" + "__".join(p.upper() for p in path)


def _walk(settings: Settings, path: tuple[str, ...]) -> tuple[BaseModel | None, str]:
    node: object = settings
    for part in path[:-1]:
        node = getattr(node, part, None)
        if node is None:
            return None, path[-1]
    return node, path[-1]  # type: ignore[return-value]


def without_secrets(settings: Settings) -> Settings:
    """A copy with every secret removed, for actor arguments."""
    out = settings.model_copy(deep=True)
    for path in SECRET_FIELDS:
        node, name = _walk(out, path)
        if node is not None and getattr(node, name, None) is not None:
            object.__setattr__(node, name, None)
    return out


def export_secrets(settings: Settings, environ: dict[str, str]) -> list[str]:
    """Puts each set secret into `environ` under its CALI_ variable (unless set); returns the names."""
    names = []
    for path in SECRET_FIELDS:
        node, name = _walk(settings, path)
        value = getattr(node, name, None) if node is not None else None
        if isinstance(value, SecretStr):
            environ.setdefault(secret_env(path), value.get_secret_value())
            names.append(secret_env(path))
    return names


def with_secrets(settings: Settings, environ: dict[str, str] | os._Environ[str]) -> Settings:
    """Inside an actor: the secrets back from its environment, where the settings do not carry them."""
    out = settings
    for path in SECRET_FIELDS:
        value = environ.get(secret_env(path))
        if not value:
            continue
        if out is settings:
            out = settings.model_copy(deep=True)
        node, name = _walk(out, path)
        if node is not None and getattr(node, name, None) is None:
            object.__setattr__(node, name, SecretStr(value))
    return out
