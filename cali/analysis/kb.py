"""The incident knowledge base: YAML write-ups, validated, and the text of each that gets indexed."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cali.analysis.model import Source

_ID = re.compile(r"^(inc|res|tax|lrn)-[A-Za-z0-9-]{1,60}$")
_STACK_FRAME = re.compile(r"^\s*(at |File \"|\.\.\. \d+ more|goroutine |\S+\.go:\d+|#\d+ )")
MAX_SYMPTOM_CHARS = 600  # the first lines of a trace carry the signal; frames only add noise


class KnowledgeError(ValueError):
    """A knowledge-base file that cannot be used, with the file and the reason."""


class DaySeen(BaseModel):
    """What the archive of one day held of a learned incident (the daily batch writes it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=1)
    services: list[str] = Field(default_factory=list)
    first: datetime
    last: datetime


MAX_SEEN_DAYS = 366  # per-day counts kept on a learned entry; older days are folded into `seen_before`


class Incident(BaseModel):
    """One post-incident write-up (knowledge/README.md describes the fields), or a learned incident."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="inc-NNNN for curated files; res-... for incidents resolved at run time; "
                    "lrn-<fingerprint> for incidents the daily batch learned from the archive.")
    title: str = Field(min_length=1)
    category: str = Field(min_length=1, pattern=r"^[a-z0-9-]+$")
    severity: Literal["critical", "high", "medium", "low"] = "medium"
    affected_stack: list[str] = Field(default_factory=list)
    symptoms: list[str] = Field(min_length=1, max_length=8)
    root_cause: str = Field(min_length=1)
    remediation: list[str] = Field(min_length=1)
    references: list[str] = Field(default_factory=list)
    source: Source = "curated"
    fingerprint: str = ""  # the alert fingerprint a resolved (or learned) incident came from
    created_at: datetime | None = None
    # Learned entries only: not resolved yet, and when the archive saw them (per UTC day, YYYY-MM-DD).
    # Per-day values make a re-run of a day replace that day's numbers instead of adding them again.
    status: Literal["unresolved"] | None = None
    seen: dict[str, DaySeen] = Field(default_factory=dict)
    seen_before: int = 0  # occurrences on days older than the MAX_SEEN_DAYS kept in `seen`

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"id {v!r} must look like inc-NNNN (or res-... for a resolved incident)")
        return v

    @property
    def occurrences(self) -> int:
        return self.seen_before + sum(d.count for d in self.seen.values())

    @property
    def first_seen(self) -> datetime | None:
        return min((d.first for d in self.seen.values()), default=None)

    @property
    def last_seen(self) -> datetime | None:
        return max((d.last for d in self.seen.values()), default=None)

    @property
    def services(self) -> list[str]:
        return sorted({s for d in self.seen.values() for s in d.services})

    @field_validator("symptoms", "remediation", "affected_stack")
    @classmethod
    def _non_empty_items(cls, v: list[str]) -> list[str]:
        if any(not isinstance(x, str) or not x.strip() for x in v):
            raise ValueError("every item must be a non-empty string")
        return v


def load_incident(path: Path) -> Incident:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path}: YAML parse error: {exc}") from exc
    if not isinstance(doc, dict):
        raise KnowledgeError(f"{path}: top level is not a mapping")
    try:
        incident = Incident.model_validate(doc)
    except ValidationError as exc:
        raise KnowledgeError(f"{path}: {exc}") from exc
    if incident.id != path.stem:
        raise KnowledgeError(f"{path}: id {incident.id!r} does not match the file name {path.stem!r}")
    return incident


def load_incidents(directory: Path | str, taxonomy: set[str] | None = None) -> list[Incident]:
    """Every `*.yaml` in `directory`, sorted by id; raises KnowledgeError naming each bad file."""
    directory = Path(directory)
    if not directory.is_dir():
        raise KnowledgeError(f"knowledge directory {directory} does not exist (expected knowledge/incidents)")
    incidents, errors = [], []
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            inc = load_incident(path)
        except KnowledgeError as exc:
            errors.append(str(exc))
            continue
        if taxonomy is not None and inc.category not in taxonomy:
            errors.append(f"{path}: category {inc.category!r} is not in the taxonomy")
        incidents.append(inc)
    seen: dict[str, int] = {}
    for inc in incidents:
        seen[inc.id] = seen.get(inc.id, 0) + 1
    errors += [f"duplicate incident id {i!r}" for i, n in seen.items() if n > 1]
    if errors:
        raise KnowledgeError(f"{len(errors)} invalid knowledge file(s):\n  " + "\n  ".join(errors))
    if not incidents:
        raise KnowledgeError(f"no incident files (*.yaml) in {directory}")
    return sorted(incidents, key=lambda i: i.id)


def load_taxonomy(path: Path | str) -> dict[str, str]:
    """`id<TAB>description` rows (header `id` skipped) -> {id: description}."""
    out: dict[str, str] = {}
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines()):
        if not line.strip() or line.startswith("#"):
            continue
        cid, _, desc = line.partition("\t")
        if i == 0 and cid.strip() == "id":
            continue
        out[cid.strip()] = desc.strip()
    return out


def taxonomy_incidents(taxonomy: dict[str, str]) -> list[Incident]:
    """Each category description as a pseudo-incident, so a category is findable by its own wording."""
    return [Incident(id=f"tax-{cid}", title=f"{cid}: {desc}", category=cid, symptoms=[desc],
                     root_cause=desc, remediation=["See the similar curated incidents of this category."],
                     severity="low") for cid, desc in taxonomy.items()]


def symptom_head(text: str, limit: int = MAX_SYMPTOM_CHARS) -> str:
    """A symptom without its stack frames, cut to `limit` characters."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not _STACK_FRAME.match(ln)]
    return "\n".join(lines)[:limit]


def document_text(incident: Incident) -> str:
    """What is embedded and BM25-indexed for an incident.

    Alerts look like symptoms, so symptoms come first and are all kept (without stack frames); the
    title names the failure in words once; the root cause adds vocabulary but is cut short, since its
    explanations ("it was NOT a pool problem") would otherwise pull unrelated alerts in.
    """
    parts = [incident.title]
    parts += [symptom_head(s) for s in incident.symptoms]
    if incident.source != "learned":  # a learned entry has no cause yet: its placeholder would only add noise
        parts.append(incident.root_cause.strip()[:300])
    return "\n".join(p for p in parts if p)


def symptom_texts(incident: Incident) -> list[str]:
    """One short text per symptom (title prefixed): finer-grained entries for the dense index."""
    return [f"{symptom_head(s)}" for s in incident.symptoms if symptom_head(s)]


def resolved_incident(*, title: str, category: str, root_cause: str, remediation: list[str],
                      symptoms: list[str], fingerprint: str = "", now: datetime | None = None,
                      severity: str = "medium") -> Incident:
    """An incident an engineer resolved at run time, ready to upsert (source="resolved")."""
    now = now or datetime.now(UTC)
    stamp = now.strftime("%Y%m%dT%H%M%S")
    suffix = (fingerprint or re.sub(r"[^a-z0-9]+", "-", title.lower()))[:16].strip("-") or "x"
    return Incident(id=f"res-{stamp}-{suffix}", title=title, category=category, severity=severity,  # type: ignore[arg-type]
                    symptoms=symptoms, root_cause=root_cause, remediation=remediation, source="resolved",
                    fingerprint=fingerprint, created_at=now)


LEARNED_CATEGORY = "unclassified"  # a learned incident has no category until someone resolves it
LEARNED_ROOT_CAUSE = "Not resolved yet: learned from the log archive by the daily batch; no cause recorded."


def learned_id(fingerprint: str) -> str:
    return f"lrn-{fingerprint}"


def learned_incident(*, fingerprint: str, title: str, symptoms: list[str], day: str, seen: DaySeen,
                     severity: str = "medium") -> Incident:
    """A cluster of the day's errors that the knowledge base did not know (source="learned").

    Its indexed text (title, symptoms, root cause) never changes after creation, so its vector stays
    the same while later days only update `seen`; the remediation says how to record the resolution.
    """
    return Incident(id=learned_id(fingerprint), title=title[:1000], category=LEARNED_CATEGORY,
                    severity=severity, symptoms=symptoms[:8], root_cause=LEARNED_ROOT_CAUSE,  # type: ignore[arg-type]
                    remediation=[f"When it is resolved, record how: cali kb add --fingerprint {fingerprint} ..."],
                    source="learned", fingerprint=fingerprint, created_at=seen.first, status="unresolved",
                    seen={day: seen})


def merge_seen(seen: dict[str, DaySeen], before: int, day: str,
               today: DaySeen | None) -> tuple[dict[str, DaySeen], int]:
    """`seen` with `day` replaced by `today` (removed when None), trimmed to MAX_SEEN_DAYS days."""
    out = {d: s for d, s in seen.items() if d != day}
    if today is not None:
        out[day] = today
    days = sorted(out)
    for old in days[:max(0, len(days) - MAX_SEEN_DAYS)]:
        before += out.pop(old).count
    return dict(sorted(out.items())), before
