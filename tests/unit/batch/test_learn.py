"""Learning a day's clusters: new entries, updates, known incidents, and re-runs that change nothing."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime

from cali.analysis.kb import DaySeen, Incident, learned_incident
from cali.analysis.model import Hit
from cali.batch.learn import learn
from cali.embed import l2_normalise


class MemoryKB:
    """The LearningStore port over a dict: id -> (incident, vector); cosine by dot product."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[Incident, list[float]]] = {}
        self.writes = 0

    def nearest(self, vector, k=5, learned_before=None):
        hits = []
        for inc, vec in self.rows.values():
            if learned_before and inc.source == "learned" and min(inc.seen) >= learned_before.isoformat():
                continue
            cos = sum(a * b for a, b in zip(vec, vector, strict=True))
            hits.append(Hit(id=inc.id, category=inc.category, title=inc.title, score=cos, dense_score=cos,
                            source=inc.source, fingerprint=inc.fingerprint))
        return sorted(hits, key=lambda h: h.score, reverse=True)[:k]

    def learned(self, ids):
        return {i: (dict(self.rows[i][0].seen), self.rows[i][0].seen_before) for i in ids
                if i in self.rows and self.rows[i][0].source == "learned"}

    def learned_on(self, day):
        return {i: (dict(inc.seen), inc.seen_before) for i, (inc, _) in self.rows.items() if day in inc.seen}

    def upsert(self, incidents, vectors=None):
        for inc, vec in zip(incidents, vectors, strict=True):
            self.rows[inc.id] = (inc, list(vec))
        self.writes += 1
        return len(incidents)

    def set_seen(self, updates):
        for i, (seen, before) in updates.items():
            inc, vec = self.rows[i]
            self.rows[i] = (inc.model_copy(update={"seen": seen, "seen_before": before}), vec)
        return len(updates)

    def delete(self, ids):
        for i in ids:
            self.rows.pop(i, None)


def vec(*xs):
    return l2_normalise([float(x) for x in xs] + [0.0] * (4 - len(xs)))


def cand(fp, day, count, v, service="orders-api"):
    t = datetime.fromisoformat(f"{day}T10:00:00+00:00")
    seen = DaySeen(count=count, services=[service], first=t, last=t.replace(hour=11))
    return learned_incident(fingerprint=fp, title=f"{service} ERROR: {fp}", symptoms=[f"text {fp}"], day=day,
                            seen=seen), v


CURATED = Incident(id="inc-0001", title="DB pool exhausted", category="db-pool", symptoms=["pool"],
                   root_cause="pool", remediation=["raise it"])


def test_new_clusters_become_learned_entries_and_a_rerun_changes_nothing():
    kb = MemoryKB()
    day = "2026-11-26"
    cands = [cand("aaaa", day, 10, vec(1, 0, 0)), cand("bbbb", day, 4, vec(0, 1, 0))]
    out = learn(kb, cands, day, threshold=0.9)
    assert out.added == ["lrn-aaaa", "lrn-bbbb"] and out.learned == 2
    assert kb.rows["lrn-aaaa"][0].occurrences == 10 and kb.rows["lrn-aaaa"][0].status == "unresolved"
    snapshot = copy.deepcopy(kb.rows)
    again = learn(kb, cands, day, threshold=0.9)
    assert kb.rows == snapshot
    assert again.updated == ["lrn-aaaa", "lrn-bbbb"] and again.added == []


def test_a_later_day_updates_counts_and_last_seen_of_the_same_incident():
    kb = MemoryKB()
    learn(kb, [cand("aaaa", "2026-11-26", 10, vec(1, 0, 0))], "2026-11-26")
    # another group id (another fingerprint) for the same failure: matched by similarity
    out = learn(kb, [cand("cccc", "2026-11-27", 3, vec(1, 0.05, 0))], "2026-11-27")
    assert out.updated == ["lrn-aaaa"] and "lrn-cccc" not in kb.rows
    inc = kb.rows["lrn-aaaa"][0]
    assert inc.occurrences == 13 and inc.last_seen.date() == date(2026, 11, 27)
    assert inc.first_seen.date() == date(2026, 11, 26)
    snapshot = copy.deepcopy(kb.rows)
    learn(kb, [cand("cccc", "2026-11-27", 3, vec(1, 0.05, 0))], "2026-11-27")
    assert kb.rows == snapshot  # the day's counts are replaced, not added again


def test_a_cluster_close_to_a_curated_incident_is_known_not_learned():
    kb = MemoryKB()
    kb.upsert([CURATED], [vec(0, 0, 1)])
    out = learn(kb, [cand("dddd", "2026-11-26", 5, vec(0, 0.1, 1))], "2026-11-26")
    assert out.known == [{"fingerprint": "dddd", "entry": "inc-0001", "similarity": out.known[0]["similarity"]}]
    assert set(kb.rows) == {"inc-0001"}


def test_similar_clusters_of_one_day_share_one_entry_in_a_fixed_order():
    kb = MemoryKB()
    day = "2026-11-26"
    cands = [cand("aaaa", day, 9, vec(1, 0, 0)), cand("abab", day, 2, vec(1, 0.1, 0), service="web-bff")]
    out = learn(kb, cands, day)
    assert out.added == ["lrn-aaaa"] and set(kb.rows) == {"lrn-aaaa"}
    inc = kb.rows["lrn-aaaa"][0]
    assert inc.occurrences == 11 and inc.services == ["orders-api", "web-bff"]
    snapshot = copy.deepcopy(kb.rows)
    learn(kb, cands, day)
    assert kb.rows == snapshot


def test_a_rerun_takes_the_day_out_of_entries_it_no_longer_feeds():
    kb = MemoryKB()
    learn(kb, [cand("aaaa", "2026-11-25", 1, vec(1, 0, 0))], "2026-11-25")
    learn(kb, [cand("aaaa", "2026-11-26", 5, vec(1, 0, 0)), cand("eeee", "2026-11-26", 2, vec(0, 1, 0))],
          "2026-11-26")
    out = learn(kb, [cand("eeee", "2026-11-26", 2, vec(0, 1, 0))], "2026-11-26")  # the archive changed
    assert out.removed == ["lrn-aaaa"]
    assert set(kb.rows["lrn-aaaa"][0].seen) == {"2026-11-25"}
    learn(kb, [], "2026-11-26")
    assert "lrn-eeee" not in kb.rows  # fed only by that day: gone


def test_seen_dates_are_utc():
    kb = MemoryKB()
    learn(kb, [cand("aaaa", "2026-11-26", 1, vec(1, 0, 0))], "2026-11-26")
    assert kb.rows["lrn-aaaa"][0].first_seen.tzinfo == UTC
