"""One Settings object: env CALI_<SECTION>__<FIELD>, optional cali.toml, validated at start-up."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from cali.core.records import Level
from cali.llm.settings import OpenAIChatSettings


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
    channel: str | None = None
    dashboard_url: str | None = None  # template: {service}, {trace_id}, {fingerprint}
    timeout_s: float = Field(5.0, gt=0)
    max_retries: int = Field(4, ge=0, le=10)

    @model_validator(mode="after")
    def _bot_needs_channel(self) -> SlackSettings:
        if self.bot_token is not None and not self.channel:
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
