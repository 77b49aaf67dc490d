"""Settings of the OpenAI-compatible chat adapter (kept apart so config loads without the openai SDK)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class OpenAIChatSettings(BaseModel):
    """Settings for the adapter; nest as `llm` in Settings (CALI_ANALYSIS__LLM__BASE_URL, ...)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field("https://api.openai.com/v1",
                          description="OpenAI, or a local server: http://127.0.0.1:11434/v1 (Ollama), "
                                      "http://127.0.0.1:8000/v1 (vLLM), http://127.0.0.1:8080/v1 (llama.cpp)")
    api_key: SecretStr | None = None  # local servers take any key
    model: str = "gpt-4o-mini"
    timeout_s: float = Field(20.0, gt=0, le=300)
    max_retries: int = Field(1, ge=0, le=5)
    temperature: float = Field(0.0, ge=0, le=2)
    max_tokens: int = Field(800, ge=64, le=8192)
