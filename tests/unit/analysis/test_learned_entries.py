"""Learned knowledge-base entries: their model, and how they rank next to curated and resolved ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cali.analysis.kb import MAX_SEEN_DAYS, DaySeen, learned_incident, merge_seen
from cali.analysis.model import Hit
from cali.analysis.retrieval import (
    LEARNED_MARGIN,
    Calibration,
    category_votes,
    rank_by_source,
    retrieval_only_analysis,
)
from cali.core.records import LogRecord

T = datetime(2026, 11, 26, 10, tzinfo=UTC)


def hit(id, score, source="curated", category="db-pool", fingerprint="", **kw):  # noqa: A002
    return Hit(id=id, category=category, title=id, score=score, dense_score=min(score, 1.0), source=source,
               fingerprint=fingerprint, **kw)


def test_learned_incident_has_fixed_text_and_per_day_counts():
    inc = learned_incident(fingerprint="0123456789abcdef", title="orders-api ERROR: x", symptoms=["x"],
                           day="2026-11-26", seen=DaySeen(count=4, services=["orders-api"], first=T, last=T))
    assert inc.id == "lrn-0123456789abcdef" and inc.source == "learned" and inc.status == "unresolved"
    assert inc.occurrences == 4 and inc.first_seen == T and "--fingerprint 0123456789abcdef" in inc.remediation[0]


def test_merge_seen_replaces_a_day_and_folds_the_oldest():
    one = DaySeen(count=1, services=["a"], first=T, last=T)
    seen, before = merge_seen({"2026-11-26": one}, 0, "2026-11-26", one.model_copy(update={"count": 5}))
    assert seen["2026-11-26"].count == 5 and before == 0
    days = {(T - timedelta(days=i)).date().isoformat(): one for i in range(MAX_SEEN_DAYS)}
    seen, before = merge_seen(days, 0, "2026-12-01", one)
    assert len(seen) == MAX_SEEN_DAYS and before == 1 and "2026-12-01" in seen


def test_curated_ranks_above_a_learned_entry_of_similar_relevance():
    ranked = rank_by_source([hit("lrn-a", 1.5, "learned"), hit("inc-1", 1.5 - LEARNED_MARGIN / 2)])
    assert [h.id for h in ranked] == ["inc-1", "lrn-a"]


def test_a_clearly_closer_learned_entry_comes_first():
    ranked = rank_by_source([hit("inc-1", 1.1), hit("lrn-a", 1.1 + LEARNED_MARGIN + 0.1, "learned")])
    assert [h.id for h in ranked] == ["lrn-a", "inc-1"]


def test_the_resolution_of_a_learned_entry_always_ranks_above_it():
    ranked = rank_by_source([hit("lrn-a", 1.9, "learned", fingerprint="f1"), hit("inc-1", 1.2),
                             hit("res-20261127-f1", 0.9, "resolved", fingerprint="f1")])
    assert [h.id for h in ranked][:2] in (["inc-1", "res-20261127-f1"], ["res-20261127-f1", "lrn-a"])
    assert [h.id for h in ranked].index("res-20261127-f1") < [h.id for h in ranked].index("lrn-a")


def test_learned_entries_cast_no_category_vote():
    votes = category_votes([hit("lrn-a", 1.9, "learned", category="unclassified"), hit("inc-1", 0.8)])
    assert list(votes) == ["db-pool"]


def test_analysis_says_seen_before():
    record = LogRecord(timestamp=T, level="ERROR", service="orders-api", message="pool timeout")
    hits = [hit("lrn-a", 1.0, "learned", category="unclassified", occurrences=12, first_seen=T,
                last_seen=T + timedelta(days=2), services=["orders-api"])]
    analysis = retrieval_only_analysis(record, hits, Calibration(threshold=0.5))
    assert analysis.abstained and "Seen before as lrn-a: 12 time(s) from 2026-11-26 to 2026-11-28" in \
        analysis.probable_cause
