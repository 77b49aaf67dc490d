"""OpenAI-compatible chat adapter (OpenAI, Ollama, vLLM, llama.cpp server) returning a validated LLMVerdict."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any, Literal

import openai
from pydantic import SecretStr

from cali.core.ports import Health
from cali.llm.settings import OpenAIChatSettings
from cali.llm.verdict import (
    LLMError,
    LLMOutputError,
    LLMTimeout,
    LLMUnavailable,
    LLMVerdict,
    parse_verdict,
    verdict_schema,
)

log = logging.getLogger(__name__)

Mode = Literal["json_schema", "json_object", "text"]
MODES: tuple[Mode, ...] = ("json_schema", "json_object", "text")
# Which response_format worked, per base_url, shared by every adapter of the process: a server that
# rejected json_schema once is asked for json_object (or plain text) straight away afterwards.
_MODE_BY_URL: dict[str, Mode] = {}
# Words in an error body that mean "this response_format is not supported here". llama.cpp builds
# before Sept 2024 answered json_schema with HTTP 500 'response_format type must be one of "text" or
# "json_object", but got: json_schema'; later builds raise std::invalid_argument, which is a 400.
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "structured output", "guided_json")
_FORMAT_STATUSES = frozenset({400, 404, 415, 422, 500, 501})


class OpenAIChat:
    """ChatLLM over the chat.completions API of the openai SDK (AsyncOpenAI)."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: SecretStr | None = None,
        timeout_s: float = 20.0,
        max_retries: int = 1,
        temperature: float = 0.0,
        max_tokens: int = 800,
        name: str = "llm",
        mode_cache: dict[str, Mode] | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._api_key = api_key
        self._modes = _MODE_BY_URL if mode_cache is None else mode_cache
        self._client: openai.AsyncOpenAI | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self.tokens = {"prompt": 0, "completion": 0}  # running totals the server reported (usage), for metrics

    @classmethod
    def from_settings(cls, s: OpenAIChatSettings, name: str = "llm") -> OpenAIChat:
        return cls(base_url=s.base_url, model=s.model, api_key=s.api_key, timeout_s=s.timeout_s,
                   max_retries=s.max_retries, temperature=s.temperature, max_tokens=s.max_tokens, name=name)

    @property
    def mode(self) -> Mode:
        """The response_format this adapter will try first."""
        return self._modes.get(self.base_url, "json_schema")

    def _key(self) -> str:
        # Always explicit: the SDK would otherwise read OPENAI_API_KEY from the environment.
        return self._api_key.get_secret_value() if self._api_key is not None else "not-needed"

    def _async_client(self) -> openai.AsyncOpenAI:
        # The SDK's connection pool belongs to the event loop that opened it; a new loop gets a new client.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self._key(),
                                              timeout=self.timeout_s, max_retries=self.max_retries)
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def analyze(self, *, system: str, user: str, taxonomy: Sequence[str] = ()) -> LLMVerdict:
        """POST /chat/completions with a json_schema response_format, falling back to json_object, then text."""
        schema = verdict_schema(taxonomy)
        modes = MODES[MODES.index(self.mode):]
        for i, mode in enumerate(modes):
            try:
                content = await self._complete(mode, system, user, schema)
            except openai.APIStatusError as exc:
                if _rejects_format(exc) and i + 1 < len(modes):
                    log.info("%s at %s rejected response_format %s (HTTP %s); trying %s",
                             self.model, self.base_url, mode, exc.status_code, modes[i + 1])
                    continue
                raise self._status_error(exc, mode) from None
            except openai.APITimeoutError:
                raise LLMTimeout(
                    f"chat.completions on {self.base_url} (model {self.model}, mode {mode}) timed out after "
                    f"{self.timeout_s}s and {self.max_retries} retries; raise CALI_ANALYSIS__LLM__TIMEOUT_S or use a "
                    "smaller model"
                ) from None
            except openai.APIConnectionError as exc:
                raise LLMUnavailable(
                    f"chat.completions on {self.base_url} unreachable: {exc.message} ({_cause(exc)}); check that "
                    "the server runs and CALI_ANALYSIS__LLM__BASE_URL ends in /v1",
                    reason="llm-unreachable",
                ) from None
            except openai.OpenAIError as exc:
                raise LLMError(f"chat.completions on {self.base_url}: {type(exc).__name__}: {exc}") from None
            if self._modes.get(self.base_url) != mode:
                self._modes[self.base_url] = mode
            return parse_verdict(content, where=f"{self.model} at {self.base_url} (mode {mode})")
        raise LLMError(f"{self.base_url}: no response_format mode left to try")  # unreachable: text never loops

    async def _complete(self, mode: Mode, system: str, user: str, schema: dict[str, Any]) -> str | None:
        client = self._async_client()
        extra: dict[str, Any] = {}
        if mode == "json_schema":
            extra["response_format"] = {"type": "json_schema",
                                        "json_schema": {"name": "analysis", "schema": schema, "strict": True}}
        else:
            # Without a schema-constrained format the schema goes in the prompt; json_object mode on
            # OpenAI also requires the word JSON in the messages.
            system = (f"{system}\n\nReply with one JSON object only, no prose, matching this JSON schema:\n"
                      f"{json.dumps(schema, separators=(',', ':'))}")
            if mode == "json_object":
                extra["response_format"] = {"type": "json_object"}
        resp = await client.chat.completions.create(
            model=self.model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            **extra,
        )
        usage = getattr(resp, "usage", None)
        if usage is not None:
            self.tokens["prompt"] += int(getattr(usage, "prompt_tokens", 0) or 0)
            self.tokens["completion"] += int(getattr(usage, "completion_tokens", 0) or 0)
        if not resp.choices:
            raise LLMOutputError(f"{self.model} at {self.base_url} returned no choices", reason="llm-empty-output")
        message = resp.choices[0].message
        if getattr(message, "refusal", None):
            raise LLMOutputError(f"{self.model} refused: {message.refusal!r}"[:400], reason="llm-refused")
        return message.content

    def _status_error(self, exc: openai.APIStatusError, mode: Mode) -> LLMError:
        status = exc.status_code
        body = json.dumps(exc.body, default=str)[:500] if exc.body is not None else exc.message[:500]
        what = f"chat.completions on {self.base_url} (model {self.model}, mode {mode}): HTTP {status}, body {body}"
        if status in (401, 403):
            return LLMUnavailable(f"{what}. Check CALI_ANALYSIS__LLM__API_KEY and the model's access.",
                                  reason="llm-auth")
        if status == 404:
            return LLMUnavailable(f"{what}. Check CALI_ANALYSIS__LLM__MODEL and that CALI_ANALYSIS__LLM__BASE_URL "
                                  "ends in /v1.",
                                  reason="llm-http-404")
        if status == 429:
            return LLMUnavailable(f"{what}. Rate limited or out of quota.", reason="llm-rate-limited")
        if status >= 500:
            return LLMUnavailable(f"{what}. The server failed; it may recover.", reason=f"llm-http-{status}")
        return LLMError(f"{what}. The request was refused as it is.", reason=f"llm-http-{status}")

    def healthcheck(self) -> Health:
        """GET /models (models.list) with a 3 s timeout; says whether the configured model is served."""
        client = openai.OpenAI(base_url=self.base_url, api_key=self._key(), timeout=3.0, max_retries=0)
        try:
            ids = [m.id for m in client.models.list()]
        except openai.AuthenticationError:
            return Health(self.name, False, f"{self.base_url}/models: HTTP 401: set CALI_ANALYSIS__LLM__API_KEY")
        except openai.APIStatusError as exc:
            return Health(self.name, False, f"{self.base_url}/models: HTTP {exc.status_code}: {exc.message[:200]}")
        except openai.APIConnectionError as exc:
            return Health(self.name, False, f"{self.base_url} unreachable ({_cause(exc)}): start the server or "
                                            "fix CALI_ANALYSIS__LLM__BASE_URL (it ends in /v1)")
        except openai.OpenAIError as exc:
            return Health(self.name, False, f"{self.base_url}/models: {type(exc).__name__}: {str(exc)[:200]}")
        finally:
            client.close()
        if ids and self.model not in ids:
            return Health(self.name, False, f"{self.base_url} serves {ids[:10]}, not {self.model!r}: "
                                            "set CALI_ANALYSIS__LLM__MODEL to one of them")
        return Health(self.name, True, f"{self.base_url} serves {self.model!r} ({len(ids)} models); "
                                       f"response_format mode {self.mode}")


def _rejects_format(exc: openai.APIStatusError) -> bool:
    if exc.status_code not in _FORMAT_STATUSES:
        return False
    text = f"{exc.message} {json.dumps(exc.body, default=str) if exc.body is not None else ''}".lower()
    return any(word in text for word in _FORMAT_WORDS)


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return f"{type(cause).__name__}: {cause}"[:200] if cause else type(exc).__name__


__all__ = ["MODES", "Mode", "OpenAIChat", "OpenAIChatSettings"]
