"""OpenAI-compatible embeddings API (openai SDK): any base_url, model and key; dimension checked on use."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from cali.core.ports import Health
from cali.embed import l2_normalise


class OpenAIEmbedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str = "https://api.openai.com/v1"
    model: str = "text-embedding-3-small"
    api_key: SecretStr = SecretStr("")
    dim: int = Field(default=1536, gt=0, description="Vector length the model returns (or is asked for).")
    request_dimensions: bool = False  # send `dimensions=dim` (text-embedding-3-* can shorten vectors)
    timeout_s: float = 30.0
    max_retries: int = 2
    batch_size: int = Field(default=128, gt=0)


class OpenAIEmbedError(RuntimeError):
    pass


class OpenAIEmbedder:
    """Calls `client.embeddings.create` in batches; the client is built on first use, not at import."""

    def __init__(self, config: OpenAIEmbedConfig, client: Any = None) -> None:
        self.config = config
        self.dim = config.dim
        self.id = f"openai:{config.model}-{config.dim}"
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(base_url=self.config.base_url, api_key=self.config.api_key.get_secret_value()
                                  or "unset", timeout=self.config.timeout_s, max_retries=self.config.max_retries)
        return self._client

    def embed(self, texts: list[str]) -> list[list[float]]:
        """POST {base_url}/embeddings (openai `embeddings.create`), in batches of `batch_size`."""
        out: list[list[float]] = []
        for start in range(0, len(texts), self.config.batch_size):
            batch = [t if t.strip() else " " for t in texts[start:start + self.config.batch_size]]
            kwargs: dict[str, Any] = {"model": self.config.model, "input": batch}
            if self.config.request_dimensions:
                kwargs["dimensions"] = self.config.dim
            try:
                resp = self.client.embeddings.create(**kwargs)
            except Exception as exc:
                raise OpenAIEmbedError(
                    f"embeddings.create failed at {self.config.base_url} (model {self.config.model}, "
                    f"{len(batch)} inputs): {type(exc).__name__}: {exc}; check CALI_EMBED__BASE_URL, "
                    "the model name and the API key") from exc
            data = sorted(resp.data, key=lambda d: d.index)
            if len(data) != len(batch):
                raise OpenAIEmbedError(f"embeddings.create at {self.config.base_url} returned {len(data)} "
                                       f"vectors for {len(batch)} inputs")
            for item in data:
                vec = [float(x) for x in item.embedding]
                if len(vec) != self.dim:
                    raise OpenAIEmbedError(
                        f"model {self.config.model} at {self.config.base_url} returned dim {len(vec)}, "
                        f"configured dim is {self.dim}: set the embedder dim to {len(vec)} (and rebuild the KB)")
                out.append(l2_normalise(vec))
        return out

    def healthcheck(self) -> Health:
        name = f"embedder:openai:{self.config.model}"
        try:
            self.embed(["healthcheck"])
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            return Health(name=name, ok=False, detail=str(exc))
        return Health(name=name, ok=True, detail=f"{self.config.base_url} model {self.config.model}, dim {self.dim}")
