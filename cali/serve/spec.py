"""What the Serve app is built from: the `args` of its Serve config file (and of the KubeRay RayService)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cali.embed.openai_embed import OpenAIEmbedConfig
from cali.llm.settings import OpenAIChatSettings

REPO = Path(__file__).resolve().parents[2]


class EmbedderSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["minilm", "openai", "hashing"] = "minilm"
    openai: OpenAIEmbedConfig | None = None  # kind=openai
    dim: int = 256  # kind=hashing


class KnowledgeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uri: str = "./data/kb.db"  # a Milvus Lite file (one owner process) or http://host:19530
    collection: str = "cali_kb"
    token_env: str = "CALI_MILVUS_TOKEN"  # a Milvus server's token, read in the replica
    incidents_dir: str = str(REPO / "knowledge" / "incidents")
    taxonomy: str = str(REPO / "knowledge" / "taxonomy.tsv")
    load_if_empty: bool = True  # a fresh local DB is filled from incidents_dir at start


class AnalyzerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    llm: OpenAIChatSettings | None = None  # None: retrieval-only analysis
    # Secrets never travel in Serve args (Ray keeps them in the controller's state): each replica
    # reads the LLM key from this environment variable (a Kubernetes secret in the RayService).
    api_key_env: str = "CALI_ANALYSIS__LLM__API_KEY"
    timeout_s: float = Field(20.0, gt=0)
    max_in_flight: int = Field(4, ge=1)  # concurrent LLM calls per replica
    redact_ips: bool = False


class ServeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    embedder: EmbedderSpec = EmbedderSpec()
    knowledge: KnowledgeSpec = KnowledgeSpec()
    analyzer: AnalyzerSpec = AnalyzerSpec()


def build_embedder(spec: EmbedderSpec) -> Any:
    """Embedders chosen from an explicit table."""
    from cali.embed.hashing import HashingEmbedder
    from cali.embed.minilm import MiniLMEmbedder
    from cali.embed.openai_embed import OpenAIEmbedder

    if spec.kind == "minilm":
        return MiniLMEmbedder()
    if spec.kind == "hashing":
        return HashingEmbedder(dim=spec.dim)
    return OpenAIEmbedder(spec.openai or OpenAIEmbedConfig())
