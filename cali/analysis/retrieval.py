"""From an alert to ranked failure categories: query focus, per-category vote, calibrated abstention."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cali.analysis.model import Analysis, Hit, Similar
from cali.core.records import LogRecord

CALIBRATION_PATH = Path(__file__).with_name("calibration.json")

# Lines that are frames of a stack trace (Java, Python, Go, Node, .NET, Ruby): they name code, not failure.
_FRAME = re.compile(
    r"(?:^|\]:?)\s*(?:at\s+[\w$.<>/]+[(\s]|at\s+\S+$|\.\.\. \d+ (?:more|common frames)|File \""
    r"|\S+\.(?:go|py|rb|js|ts|java|cs):\d+|goroutine \d+|#\d+\s|\[signal |created by |-+\s*$|\^+\s*$"
    r"|\(Native Method\))")
# A line naming an error: an exception class, a Caused by, a panic, an errno-like phrase.
_CLUE = re.compile(
    r"Caused by:|\b[A-Z]\w*(?:Exception|Error|Fault|Failure)\b|\bpanic:|\b(?:error|ERROR|Error|FATAL|fatal|"
    r"failed|Failed|refused|denied|exceeded|timed? ?out|not found|No such|too many|Too many|cannot|Cannot)\b")
_NOISE = [
    # leading timestamps: ISO/logback/Python/nginx/klog ("W0608 13:29:30.543511")
    re.compile(r"\b\d{4}[-/]\d\d[-/]\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"),
    re.compile(r"\b[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+\s+"),
    re.compile(r"\b\d\d:\d\d:\d\d(?:[.,]\d+)?\b"),
    # uuids, long hex ids, hex addresses
    re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    re.compile(r"\b0x[0-9a-fA-F]+\b|\b[0-9a-f]{12,}\b"),
    # logback thread/trace brackets "[orders-api,6f1c...,6f1c...]" and "[nio-8080-exec-7]"
    re.compile(r"\[[\w.-]*,[0-9a-f]*,[0-9a-f]*\]|\[\s*[\w.-]*-\d+(?:-[\w]+)*\]"),
    re.compile(r"@[0-9a-f]{6,}\b"),  # Java identity hashes "Task@5c499319"
]
_CAUSED_BY = re.compile(r"^\s*Caused by:\s*", re.IGNORECASE)
MAX_QUERY_CHARS = 700


def focus_text(message: str, stack: str | None = None, max_chars: int = MAX_QUERY_CHARS) -> str:
    """The lines of an alert that say what failed, deepest cause first, without frames, ids or timestamps.

    A generic outer exception ("ReactiveException", "Failed to obtain JDBC Connection") often wraps the
    real one, so the last `Caused by:` line leads, then the other error lines, then the rest.
    """
    text = message if not stack else f"{message}\n{stack}"
    lines = []
    for raw in text.splitlines():
        if not raw.strip() or _FRAME.search(raw):
            continue
        line = raw
        for rx in _NOISE:
            line = rx.sub(" ", line)
        line = re.sub(r"\s+", " ", line).strip(" -:|")
        if line and line not in lines:
            lines.append(line)
    causes = [_CAUSED_BY.sub("", ln) for ln in lines if _CAUSED_BY.match(ln)]
    clues = [ln for ln in lines if _CLUE.search(ln) and not _CAUSED_BY.match(ln)]
    rest = [ln for ln in lines if ln not in clues and not _CAUSED_BY.match(ln)]
    ordered = list(reversed(causes)) + clues + rest
    out, size = [], 0
    for ln in ordered:
        if size + len(ln) > max_chars and out:
            break
        out.append(ln[:max_chars])
        size += len(ln) + 1
    return "\n".join(out) if out else text.strip()[:max_chars]


def record_query(record: LogRecord) -> str:
    return focus_text(record.message, record.stack)


# A learned entry (an unresolved cluster the daily batch found in the archive) says "seen before" but
# not why or how to fix it: a curated or resolved entry of about the same relevance is worth more to the
# on-call engineer. So a learned entry ranks above one only when its fused score is higher by more than
# this (fused scores span 0..1 + lexical_weight), and never above the resolution recorded for it.
LEARNED_MARGIN = 0.25


def rank_by_source(hits: Sequence[Hit], margin: float = LEARNED_MARGIN) -> list[Hit]:
    """Hits best first, with curated and resolved entries ahead of learned ones of similar relevance."""
    resolved_score = {h.fingerprint: h.score for h in hits if h.source != "learned" and h.fingerprint}

    def key(h: Hit) -> float:
        if h.source != "learned":
            return h.score
        adjusted = h.score - margin
        if h.fingerprint in resolved_score:  # its resolution is in the results: right after it
            adjusted = min(adjusted, resolved_score[h.fingerprint] - 1e-9)
        return adjusted

    return sorted(hits, key=key, reverse=True)


class KnowledgeStore(Protocol):
    """The part of the vector store the analysis needs (cali.vector.milvus.MilvusStore is one)."""

    def search(self, text: str, k: int = 10) -> list[Hit]: ...


@dataclass(frozen=True)
class Calibration:
    """Settings of the category vote and the abstention threshold (see docs/analysis.md)."""

    k: int = 10  # hits retrieved per alert
    rank_decay: float = 0.6  # weight of the i-th hit of a category: decay**i (its best hit counts most)
    threshold: float = 0.0  # confidence below which the analysis abstains
    method: str = "uncalibrated default"
    extra: dict[str, object] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | str = CALIBRATION_PATH) -> Calibration:
        p = Path(path)
        if not p.is_file():
            return cls()
        data = json.loads(p.read_text(encoding="utf-8"))
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        return cls(**{k: v for k, v in data.items() if k in known},
                   extra={k: v for k, v in data.items() if k not in known})


@dataclass(frozen=True)
class CategoryRanking:
    top_categories: list[str]
    scores: dict[str, float]  # per-category vote, best first
    confidence: float  # 0..1
    abstained: bool

    @property
    def category(self) -> str | None:
        return None if self.abstained or not self.top_categories else self.top_categories[0]


def category_votes(hits: Sequence[Hit], rank_decay: float = 0.6) -> dict[str, float]:
    """Sum over a category's hits of fused score x decay**(rank of the hit within its category)."""
    votes: dict[str, float] = {}
    seen: dict[str, int] = {}
    # Learned entries have no category yet: they say "seen before", not what kind of failure it is.
    for hit in sorted((h for h in hits if h.source != "learned"), key=lambda h: h.score, reverse=True):
        i = seen.get(hit.category, 0)
        seen[hit.category] = i + 1
        votes[hit.category] = votes.get(hit.category, 0.0) + max(hit.score, 0.0) * rank_decay ** i
    return dict(sorted(votes.items(), key=lambda kv: kv[1], reverse=True))


def confidence_of(hits: Sequence[Hit], votes: dict[str, float]) -> float:
    """The cosine similarity of the alert to the best entry of the winning category, in 0..1.

    Dense cosine is comparable across alerts (BM25 grows with the query's length, so it ranks but does
    not calibrate); out-of-taxonomy alerts resemble no incident of the category they are pushed into.
    """
    if not hits or not votes:
        return 0.0
    winner = next(iter(votes))
    best = max(((h.dense_score if h.dense_score is not None else h.score) for h in hits
                if h.category == winner and h.source != "learned"),
               default=0.0)
    return max(0.0, min(1.0, best))


def rank_categories(hits: Sequence[Hit], calibration: Calibration, taxonomy: Sequence[str] = (),
                    min_categories: int = 3) -> CategoryRanking:
    """Categories best first (padded from the taxonomy to `min_categories`), confidence and abstention."""
    votes = category_votes(hits, calibration.rank_decay)
    ranked = list(votes)
    for cid in taxonomy:
        if len(ranked) >= min_categories:
            break
        if cid not in votes:
            ranked.append(cid)
    conf = confidence_of(hits, votes)
    abstain = not ranked or conf < calibration.threshold
    return CategoryRanking(top_categories=ranked, scores=votes, confidence=round(conf, 4), abstained=abstain)


def rank_record(store: KnowledgeStore, record: LogRecord, calibration: Calibration,
                taxonomy: Sequence[str] = ()) -> tuple[CategoryRanking, list[Hit]]:
    hits = store.search(record_query(record), k=calibration.k)
    return rank_categories(hits, calibration, taxonomy), hits


def _similarity(hit: Hit) -> float:
    return hit.dense_score if hit.dense_score is not None else hit.score


def retrieval_only_analysis(record: LogRecord, hits: Sequence[Hit], calibration: Calibration | None = None,
                            taxonomy: Sequence[str] = (), degraded_reason: str | None = None) -> Analysis:
    """The analysis without an LLM: the best past incidents' cause and fix, worded as what they are."""
    calibration = calibration or Calibration.load()
    ranking = rank_categories(hits, calibration, taxonomy)
    evidence = [ln for ln in record_query(record).splitlines()[:3]]
    real = [h for h in hits if not h.id.startswith("tax-")]  # taxonomy descriptions are not incidents
    similar = [Similar(id=h.id, category=h.category, score=round(_similarity(h), 4), title=h.title) for h in real[:5]]
    seen = seen_before(real)
    if ranking.abstained:
        return Analysis(probable_cause=("No similar past incident found." + seen).strip(), category=None,
                        top_categories=ranking.top_categories[:5], confidence=ranking.confidence,
                        evidence=evidence, remediation=[], similar_incident_ids=[s.id for s in similar],
                        similar=similar, similarity_threshold=calibration.threshold, abstained=True,
                        mode="retrieval-only", degraded_reason=degraded_reason)
    best_cat = ranking.top_categories[0]
    in_cat = [h for h in real if h.category == best_cat]
    if in_cat:
        best = in_cat[0]
        cause = (f"Similar past incident {best.id} (similarity {_similarity(best):.2f}, category {best_cat}): "
                 f"{best.title}. {_first_sentences(best.root_cause, 2)}")
        remediation = list(best.remediation)
        source = [best.id] if remediation else []
    else:
        cause = f"Closest match is the description of category {best_cat}; no past incident of it is similar."
        remediation, source = [], []
    return Analysis(probable_cause=(cause.strip() + seen).strip(), category=best_cat,
                    top_categories=ranking.top_categories[:5],
                    confidence=ranking.confidence, evidence=evidence, remediation=remediation,
                    remediation_from=source, similar_incident_ids=[s.id for s in similar], similar=similar,
                    similarity_threshold=calibration.threshold, abstained=False, mode="retrieval-only",
                    degraded_reason=degraded_reason)


SEEN_BEFORE_SIMILARITY = 0.85  # cosine from which a learned entry is the same failure seen again


def seen_before(hits: Sequence[Hit]) -> str:
    """" Seen before as lrn-...: N times, first on ..., last on ..." for the closest learned entry, or ""."""
    for h in hits:
        if h.source == "learned" and _similarity(h) >= SEEN_BEFORE_SIMILARITY and h.first_seen and h.last_seen:
            return (f" Seen before as {h.id}: {h.occurrences or 0} time(s) from {h.first_seen:%Y-%m-%d} to "
                    f"{h.last_seen:%Y-%m-%d}, not resolved yet.")
    return ""


def _first_sentences(text: str, n: int) -> str:
    parts = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return " ".join(parts[:n])

