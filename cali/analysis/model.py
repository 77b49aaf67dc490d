"""The shapes every analysis stage agrees on: a retrieved incident and the analysis result."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Source = Literal["curated", "learned", "resolved"]


class Hit(BaseModel):
    """One knowledge-base entry retrieved for an alert, best first."""

    model_config = ConfigDict(frozen=True)

    id: str
    category: str
    title: str
    score: float  # fused score, higher is better; comparable within one query only
    dense_score: float | None = None  # cosine similarity of the embeddings, 0..1 for normalised vectors
    lexical_score: float | None = None  # BM25
    root_cause: str = ""
    remediation: list[str] = []
    source: Source = "curated"
    fingerprint: str = ""  # the incident fingerprint a resolved or learned entry came from
    # Learned entries: how often and when the archive saw them (the daily batch keeps these current).
    occurrences: int | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    services: list[str] = []


class Similar(BaseModel):
    id: str
    category: str
    score: float
    title: str = ""


class Analysis(BaseModel):
    """What CALI tells the on-call engineer after the alert. Validated whatever produced it."""

    model_config = ConfigDict(extra="forbid")

    probable_cause: str = Field(description="One or two sentences, grounded in the evidence and similar incidents.")
    category: str | None = Field(description="A taxonomy id, or null when abstaining.")
    top_categories: list[str] = Field(default_factory=list, description="Best first; at least 3 when known.")
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[str] = Field(default_factory=list, description="Log lines quoted verbatim (redacted).")
    remediation: list[str] = Field(default_factory=list, description="Steps taken from past incidents' fixes.")
    remediation_from: list[str] = Field(default_factory=list,
                                        description="The past incidents whose fix text the remediation comes from.")
    model_suggestions: list[str] = Field(
        default_factory=list, description="The LLM's own steps, which no cited incident supports: check before acting.")
    grounding_notes: list[str] = Field(default_factory=list,
                                       description="What the grounding check changed: steps dropped, a cause replaced.")
    similar_incident_ids: list[str] = Field(default_factory=list)
    similar: list[Similar] = Field(default_factory=list)
    similarity_threshold: float | None = Field(
        None, description="Below this similarity to its best entry, the analysis abstains (calibrated).")
    abstained: bool
    mode: Literal["llm", "retrieval-only"] = "retrieval-only"
    degraded_reason: str | None = None  # why the LLM step was skipped or failed, if it was
