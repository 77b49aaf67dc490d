"""Category vote, abstention and the retrieval-only wording, on fake hits."""

from __future__ import annotations

from cali.analysis.commands import choose_threshold, score
from cali.analysis.model import Hit
from cali.analysis.retrieval import (
    Calibration,
    category_votes,
    focus_text,
    rank_categories,
    retrieval_only_analysis,
)
from cali.core.records import LogRecord

TAXONOMY = ["db-pool-exhausted", "db-unreachable", "disk-full", "dns-failure"]


def hit(id_: str, cat: str, score: float, dense: float, **kw: object) -> Hit:
    return Hit(id=id_, category=cat, title=f"title of {id_}", score=score, dense_score=dense, **kw)


def record(message: str) -> LogRecord:
    return LogRecord(timestamp="2026-11-26T12:00:00Z", level="ERROR", service="orders-api", message=message)


def test_votes_sum_a_category_with_decay() -> None:
    hits = [hit("a", "disk-full", 1.0, 0.6), hit("b", "dns-failure", 0.9, 0.5), hit("c", "dns-failure", 0.8, 0.5),
            hit("d", "dns-failure", 0.1, 0.1)]
    votes = category_votes(hits, rank_decay=0.5)
    assert list(votes) == ["dns-failure", "disk-full"]
    assert votes["dns-failure"] == 0.9 + 0.8 * 0.5 + 0.1 * 0.25


def test_ranking_pads_to_three_from_the_taxonomy_and_keeps_order() -> None:
    r = rank_categories([hit("a", "disk-full", 1.2, 0.7)], Calibration(threshold=0.4), TAXONOMY)
    assert r.top_categories == ["disk-full", "db-pool-exhausted", "db-unreachable"]
    assert r.category == "disk-full" and not r.abstained and r.confidence == 0.7


def test_abstains_below_the_threshold() -> None:
    hits = [hit("a", "disk-full", 0.5, 0.31), hit("b", "dns-failure", 0.4, 0.3)]
    r = rank_categories(hits, Calibration(threshold=0.38), TAXONOMY)
    assert r.abstained and r.category is None
    assert len(r.top_categories) >= 3  # still ranked, for top-3 reporting


def test_no_hits_abstains() -> None:
    r = rank_categories([], Calibration(threshold=0.1), TAXONOMY)
    assert r.abstained and r.confidence == 0.0


def test_focus_puts_the_deepest_cause_first_and_drops_frames() -> None:
    text = ("2026-11-26 12:00:00.123 ERROR [orders-api,6f1c2a9e0b7d4c11,6f1c2a9e0b7d4c11] Request failed\n"
            "org.springframework.web.client.ResourceAccessException: I/O error on POST\n"
            "\tat org.springframework.web.client.RestTemplate.doExecute(RestTemplate.java:785)\n"
            "Caused by: java.net.UnknownHostException: payments.internal: Name or service not known\n"
            "\t... 12 more")
    focused = focus_text(text)
    assert focused.splitlines()[0].startswith("java.net.UnknownHostException")
    assert "RestTemplate.java" not in focused and "12 more" not in focused and "6f1c2a9e" not in focused


def test_retrieval_only_quotes_the_best_incident_honestly() -> None:
    hits = [hit("inc-0042", "disk-full", 1.4, 0.71, root_cause="WAL filled the volume. Archiving was stuck.",
                remediation=["Free space on /var/lib/postgresql"]),
            hit("tax-disk-full", "disk-full", 1.0, 0.5), hit("inc-0007", "dns-failure", 0.6, 0.4)]
    a = retrieval_only_analysis(record("OSError: [Errno 28] No space left on device"), hits,
                                Calibration(threshold=0.4), TAXONOMY)
    assert a.mode == "retrieval-only" and not a.abstained and a.category == "disk-full"
    assert a.probable_cause.startswith("Similar past incident inc-0042 (similarity 0.71")
    assert a.remediation == ["Free space on /var/lib/postgresql"]
    assert "tax-disk-full" not in a.similar_incident_ids and a.similar_incident_ids[0] == "inc-0042"
    assert a.evidence == ["OSError: [Errno 28] No space left on device"]


def test_retrieval_only_abstains_with_the_agreed_wording() -> None:
    a = retrieval_only_analysis(record("W0608 Ingress is deprecated"), [hit("inc-1", "disk-full", 0.4, 0.2)],
                                Calibration(threshold=0.4), TAXONOMY)
    assert a.abstained and a.category is None and a.probable_cause == "No similar past incident found."
    assert a.remediation == []


def test_conformal_threshold_keeps_false_abstention_within_alpha() -> None:
    conf = [0.3 + i / 100 for i in range(39)]  # n=39: k = floor(0.05*40) = 2
    t = choose_threshold(conf, 0.05)
    assert sum(c < t for c in conf) == 1
    assert choose_threshold([0.5] * 10) == 0.0  # too few cases for any guarantee: never abstain


def test_score_follows_the_eval_readme() -> None:
    rows = [{"id": "1", "expected_category": "a"}, {"id": "2", "expected_category": "b"},
            {"id": "3", "expected_category": None}]
    preds = [{"predicted_category": "a", "top_categories": ["a", "c", "d"], "abstained": False},
             {"predicted_category": None, "top_categories": ["c", "b", "d"], "abstained": True},
             {"predicted_category": None, "top_categories": ["a", "b", "c"], "abstained": True}]
    assert score(rows, preds) == {"top1": 0.5, "top3": 1.0, "abstention": 1.0, "false_abstention": 0.5,
                                  "n_in": 2, "n_out": 1}
