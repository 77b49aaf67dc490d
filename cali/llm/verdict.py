"""The LLM port: what a chat model must answer (LLMVerdict), its JSON schema, parsing, and typed errors."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cali.core.ports import Health


class LLMError(Exception):
    """The LLM step failed; `reason` is the short code the analysis shows as degraded_reason."""

    reason = "llm-error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class LLMUnavailable(LLMError):
    """The endpoint did not answer usefully: connection, 5xx, 429, auth. A later call may work."""

    reason = "llm-unavailable"


class LLMTimeout(LLMUnavailable):
    reason = "llm-timeout"


class LLMOutputError(LLMError):
    """The model answered, but not with a valid verdict: not JSON, or JSON that breaks the schema."""

    reason = "llm-invalid-output"


class LLMRejectedOutput(LLMOutputError):
    """A schema-valid verdict that the output guard refused: a leaked prompt, a category off the taxonomy."""

    reason = "llm-rejected-output"


class LLMVerdict(BaseModel):
    """The model's answer. Extra keys are ignored (json_object mode models add their own)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    probable_cause: str = Field(min_length=1, max_length=2000)
    category: str | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[str] = Field(default_factory=list, max_length=20)
    remediation: list[str] = Field(default_factory=list, max_length=20)
    similar_incident_ids: list[str] = Field(default_factory=list, max_length=50)
    abstained: bool = False

    @model_validator(mode="after")
    def _no_category_is_abstaining(self) -> LLMVerdict:
        category = (self.category or "").strip()
        if category.lower() in {"", "null", "none", "unknown"}:
            object.__setattr__(self, "category", None)
            object.__setattr__(self, "abstained", True)
        else:
            object.__setattr__(self, "category", category)
        return self


def verdict_schema(taxonomy: Sequence[str] = ()) -> dict[str, Any]:
    """JSON schema for response_format json_schema, strict: every key required, no extra keys.

    With a taxonomy the category is an enum, so servers that compile the schema to a grammar
    (llama.cpp, vLLM, Ollama) cannot emit anything else.
    """
    category: dict[str, Any] = (
        {"anyOf": [{"type": "string", "enum": list(taxonomy)}, {"type": "null"}]}
        if taxonomy else {"type": ["string", "null"]}
    )
    strings = {"type": "array", "items": {"type": "string"}}
    return {
        "type": "object",
        "properties": {
            "probable_cause": {"type": "string", "description": "One or two sentences grounded in the evidence."},
            "category": category,
            "confidence": {"type": "number", "description": "0 to 1"},
            "evidence": {**strings, "description": "Log lines quoted verbatim from the log block."},
            "remediation": {**strings, "description": "Concrete steps, most useful first."},
            "similar_incident_ids": {**strings, "description": "Ids of the given similar incidents that match."},
            "abstained": {"type": "boolean", "description": "true when no category fits the evidence"},
        },
        "required": ["probable_cause", "category", "confidence", "evidence", "remediation",
                     "similar_incident_ids", "abstained"],
        "additionalProperties": False,
    }


_THINK = re.compile(r"<think>.*?</think>", re.S | re.I)  # reasoning models put their thoughts first


def extract_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in `text` (bare, fenced in ```json, or after prose); raises ValueError."""
    text = _THINK.sub("", text)
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    raise ValueError("no JSON object in the model's reply")


def parse_verdict(content: str | None, *, where: str) -> LLMVerdict:
    """Parses and validates one reply; raises LLMOutputError naming what was wrong and a sample of the reply."""
    if not content or not content.strip():
        raise LLMOutputError(f"{where}: the model returned no content", reason="llm-empty-output")
    sample = content[:300]
    try:
        data = extract_json_object(content)
    except ValueError:
        raise LLMOutputError(f"{where}: reply is not JSON: {sample!r}", reason="llm-invalid-json") from None
    try:
        return LLMVerdict.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'reply'}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise LLMOutputError(
            f"{where}: reply breaks the verdict schema ({problems}): {sample!r}", reason="llm-schema-violation"
        ) from None


class ChatLLM(Protocol):
    """An LLM that returns a validated verdict for a system + user prompt, or raises LLMError."""

    name: str

    async def analyze(self, *, system: str, user: str, taxonomy: Sequence[str] = ()) -> LLMVerdict: ...

    def healthcheck(self) -> Health: ...


__all__ = ["ChatLLM", "LLMError", "LLMOutputError", "LLMRejectedOutput", "LLMTimeout", "LLMUnavailable",
           "LLMVerdict", "extract_json_object", "parse_verdict", "verdict_schema"]
