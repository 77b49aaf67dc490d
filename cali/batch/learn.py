"""How a day's clusters become knowledge: new learned entries, updated counts, or a known incident.

Re-running a day gives the same knowledge base:
- ids are derived (`lrn-<fingerprint>`), writes are upserts, and a learned entry's text and vector never
  change after it is made; later days only rewrite its per-day counts (`Incident.seen`);
- a run of day D replaces D's counts wherever they are, and removes D from entries it no longer feeds;
- a cluster whose own entry (`lrn-<its fingerprint>`) exists feeds it; any other is matched against the
  knowledge base as it was before D: learned entries first seen on or after D (what an earlier run of D,
  or of a later day, wrote) are left out of the search, and the clusters of the run are matched against
  each other in a fixed order instead. So a second run takes every decision the first one took.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from cali.analysis.kb import DaySeen, Incident, merge_seen
from cali.analysis.model import Hit

Seen = tuple[dict[str, DaySeen], int]  # per-day stats and the occurrences folded from older days


class LearningStore(Protocol):
    """What learning needs of the vector store (cali.vector.milvus.MilvusStore is one)."""

    def nearest(self, vector: Sequence[float], k: int = 5, learned_before: date | None = None) -> list[Hit]: ...
    def learned(self, ids: Sequence[str]) -> dict[str, Seen]: ...
    def learned_on(self, day: str) -> dict[str, Seen]: ...
    def upsert(self, incidents: Sequence[Incident], vectors: Sequence[Sequence[float]] | None = None) -> int: ...
    def set_seen(self, updates: Mapping[str, Seen]) -> int: ...
    def delete(self, ids: Sequence[str]) -> None: ...


@dataclass
class LearnOutcome:
    day: str
    added: list[str] = field(default_factory=list)  # entries that did not exist before this run
    updated: list[str] = field(default_factory=list)  # existing entries whose counts for the day were set
    known: list[dict[str, Any]] = field(default_factory=list)  # clusters that match a curated/resolved entry
    removed: list[str] = field(default_factory=list)  # entries the day no longer feeds (its counts removed)
    clusters: list[dict[str, Any]] = field(default_factory=list)  # per cluster: fingerprint, entry, action

    @property
    def learned(self) -> int:
        return len(self.added) + len(self.updated)

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day, "learned": self.learned, "added": self.added, "updated": self.updated,
                "known": self.known, "removed": self.removed, "clusters": self.clusters}


def _combine(a: DaySeen | None, b: DaySeen) -> DaySeen:
    if a is None:
        return b
    return DaySeen(count=a.count + b.count, services=sorted(set(a.services) | set(b.services)),
                   first=min(a.first, b.first), last=max(a.last, b.last))


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))  # both L2-normalised: the cosine


def learn(store: LearningStore, candidates: Sequence[tuple[Incident, Sequence[float]]], day: str,
          threshold: float = 0.9) -> LearnOutcome:
    """Matches each candidate (a learned Incident with `seen` = {day: ...} and the vector of its document
    text) and writes the day's knowledge. Candidates must come in a fixed order (most frequent first)."""
    d = date.fromisoformat(day)
    out = LearnOutcome(day=day)
    existing = store.learned([inc.id for inc, _ in candidates])
    fed: dict[str, DaySeen] = {}  # entry id -> the day's combined stats
    new: dict[str, tuple[Incident, Sequence[float]]] = {}
    # Entries this run made or fed as their own cluster's, in order: what later clusters of the run match
    # against (the same set, in the same order, whether the run is the first or a re-run).
    pool: list[tuple[str, Sequence[float]]] = []
    for inc, vector in candidates:
        today = inc.seen[day]
        own = existing.get(inc.id)
        if own is not None:  # the same incident (same key): its entry, even if a resolution is recorded since
            target = inc.id
            pool.append((target, vector))
        else:
            hits = store.nearest(vector, k=3, learned_before=d)
            best = hits[0] if hits and (hits[0].dense_score or 0.0) >= threshold else None
            if best is not None and best.source != "learned":
                out.known.append({"fingerprint": inc.fingerprint, "entry": best.id,
                                  "similarity": round(best.dense_score or 0.0, 4)})
                out.clusters.append({"fingerprint": inc.fingerprint, "entry": best.id, "action": "known"})
                continue
            if best is not None:
                target = best.id
            else:
                twin = max(pool, key=lambda iv: _dot(iv[1], vector), default=None)
                if twin is not None and _dot(twin[1], vector) >= threshold:
                    target = twin[0]
                else:
                    target = inc.id
                    new[target] = (inc, vector)
                    pool.append((target, vector))
        fed[target] = _combine(fed.get(target), today)
        out.clusters.append({"fingerprint": inc.fingerprint, "entry": target, "action": "learned"})

    rewrite: dict[str, Seen] = {}
    before = store.learned([i for i in fed if i not in existing]) | existing
    for entry, today in fed.items():
        if entry in before:
            rewrite[entry] = merge_seen(before[entry][0], before[entry][1], day, today)
    creates = [(inc.model_copy(update={"seen": {day: fed[i]}}), vec) for i, (inc, vec) in new.items()
               if i not in before]
    for entry, (seen, folded) in store.learned_on(day).items():
        if entry not in fed:  # the day fed it in an earlier run, no longer: take the day's counts out
            rewrite[entry] = merge_seen(seen, folded, day, None)
            out.removed.append(entry)
    empty = [e for e, (seen, folded) in rewrite.items() if not seen and not folded]
    store.set_seen({e: s for e, s in rewrite.items() if e not in empty})
    store.delete(empty)
    if creates:
        store.upsert([inc for inc, _ in creates], [vec for _, vec in creates])
    out.added = sorted(i for i in fed if i not in before)
    out.updated = sorted(i for i in fed if i in before)
    for c in out.clusters:
        if c["action"] == "learned":
            c["action"] = "added" if c["entry"] in out.added else "updated"
    return out
