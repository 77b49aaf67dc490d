"""What the Serve app is built from: the `args` of its Serve config file (and of the KubeRay RayService)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from cali.config import AwsSettings, StateSettings
from cali.embed.openai_embed import OpenAIEmbedConfig
from cali.llm.settings import OpenAIChatSettings

REPO = Path(__file__).resolve().parents[2]


class EmbedderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["minilm", "openai", "hashing"] = "minilm"
    openai: OpenAIEmbedConfig | None = None  # kind=openai (its api_key is never given here: see api_key_env)
    api_key_env: str = "CALI_EMBEDDINGS_API_KEY"  # kind=openai: the key, read in the replica's environment
    dim: int = 256  # kind=hashing


class KnowledgeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str = "./data/kb.db"  # a Milvus Lite file (one owner process) or http://host:19530
    collection: str = "cali_kb"
    token_env: str = "CALI_MILVUS_TOKEN"  # a Milvus server's token, read in the replica
    incidents_dir: str = str(REPO / "knowledge" / "incidents")
    taxonomy: str = str(REPO / "knowledge" / "taxonomy.tsv")
    load_if_empty: bool = True  # a fresh local DB is filled from incidents_dir at start


class BudgetSpec(BaseModel):
    """The daily LLM budget, counted in the pipeline's state store and shared by every Analyzer replica."""

    model_config = ConfigDict(extra="forbid")

    daily_llm_calls: int = Field(500, ge=0)  # per UTC day, HTTP and follow-ups together; 0 turns the LLM off
    state: StateSettings = StateSettings()  # sqlite_dir or the DynamoDB state table; credentials from the env


class AnalyzerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    llm: OpenAIChatSettings | None = None  # None: retrieval-only analysis
    # Secrets never travel in Serve args (Ray keeps them in the controller's state): each replica
    # reads the LLM key from this environment variable (a Kubernetes secret in the RayService).
    api_key_env: str = "CALI_ANALYSIS__LLM__API_KEY"
    timeout_s: float = Field(20.0, gt=0)
    max_in_flight: int = Field(4, ge=1)  # concurrent LLM calls per replica
    redact_ips: bool = False
    budget: BudgetSpec = BudgetSpec()


class ApiSpec(BaseModel):
    """POST /analyze and /kb/search authentication (GET /healthz and the docs stay open)."""

    model_config = ConfigDict(extra="forbid")

    # The bearer token is read in the Api replica, never passed here: from this environment variable...
    token_env: str = "CALI_API_TOKEN"
    # ...or, when that is unset, from this AWS Secrets Manager secret (name or ARN; SecretString = token).
    token_secret_id: str | None = None
    # None: required exactly when the HTTP proxy binds beyond loopback; true/false forces it.
    require_token: bool | None = None


class ServeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    embedder: EmbedderSpec = EmbedderSpec()
    knowledge: KnowledgeSpec = KnowledgeSpec()
    analyzer: AnalyzerSpec = AnalyzerSpec()
    api: ApiSpec = ApiSpec()
    # Region and endpoints for the budget's DynamoDB table and the token's secret; access keys are not
    # taken here (Serve args are not secret): replicas use their environment's AWS credentials.
    aws: AwsSettings = AwsSettings()

    @model_validator(mode="after")
    def _no_credentials_in_args(self) -> ServeSpec:
        if self.aws.access_key_id is not None or self.aws.secret_access_key is not None:
            raise ValueError("aws.access_key_id/secret_access_key do not belong in the Serve args (Ray keeps them "
                             "in the controller's state): give the replicas AWS credentials through their "
                             "environment or an IAM role")
        return self


def build_embedder(spec: EmbedderSpec) -> Any:
    """Embedders chosen from an explicit table."""
    from cali.embed.hashing import HashingEmbedder
    from cali.embed.minilm import MiniLMEmbedder
    from cali.embed.openai_embed import OpenAIEmbedder

    if spec.kind == "minilm":
        return MiniLMEmbedder()
    if spec.kind == "hashing":
        return HashingEmbedder(dim=spec.dim)
    config = spec.openai or OpenAIEmbedConfig()
    key = os.environ.get(spec.api_key_env)
    # The key is resolved here, inside the replica: Serve args are kept in the controller's state.
    return OpenAIEmbedder(config.model_copy(update={"api_key": SecretStr(key)}) if key else config)
