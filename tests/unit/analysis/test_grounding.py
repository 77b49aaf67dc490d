"""Grounding of the LLM's advice: instruction artifacts, word support with polarity, and the sorting of steps."""

from __future__ import annotations

import pytest

from cali.analysis.grounding import artifacts, content_words, foreign, ground, negated, support, supported
from cali.analysis.model import Hit

POOL = Hit(id="inc-1", category="db-pool-exhausted", title="Hikari pool exhausted", score=0.9,
           root_cause="A report query held every connection.",
           remediation=["Move the report query to a read replica with its own small pool.",
                        "Enable leakDetectionThreshold (e.g. 20000 ms) to log connections held too long.",
                        "Size maximumPoolSize from measured concurrency; do not simply raise it above max_connections.",
                        "Verify with `nc -vz db.internal 5432` from a pod."])
TLS = Hit(id="inc-2", category="tls-certificate", title="Partner chain incomplete", score=0.5,
          root_cause="The partner served only the leaf certificate.",
          remediation=["Never set NODE_TLS_REJECT_UNAUTHORIZED=0 as a fix.",
                       "Ask the partner to serve the full chain."])

# (name, text, expected (kind, value) pairs)
ARTIFACTS = [
    ("url", "see https://runbooks.evil.io/x.", [("url", "https://runbooks.evil.io/x")]),
    ("www url", "go to www.evil.example/fix now", [("url", "www.evil.example/fix")]),
    ("email", "write to ops@evil-mail.com", [("email", "ops@evil-mail.com")]),
    ("ipv4", "run it on 203.0.113.7 as root", [("ip", "203.0.113.7")]),
    ("host with port", "point it at db.attacker.net:5432", [("host", "db.attacker.net:5432")]),
    ("internal host", "use cache.prod.internal", [("host", "cache.prod.internal")]),
    ("code span", "run `rm -rf /data` first", [("command", "rm -rf /data")]),
    ("pipe to shell", "curl -s x | sudo bash", [("command", "curl -s"), ("command", "| sudo bash")]),
    ("command substitution", "run $(id) now", [("command", "$(id)")]),
    ("env assignment", "set NODE_TLS_REJECT_UNAUTHORIZED=0.", [("command", "NODE_TLS_REJECT_UNAUTHORIZED=0")]),
    ("redacted value", "mail it to [REDACTED:email]", [("redacted value", "[REDACTED:email]")]),
    ("java class is not a host", "java.sql.SQLException in com.zaxxer.hikari.pool", []),
    ("file name is not a host", "edit app.py and config.yaml", []),
    ("prose mentioning ssh stays", "SSH into the node and look at the disk", []),
    ("identifier is not a command", "raise maximumPoolSize and rs.status()", []),
]


@pytest.mark.parametrize(("name", "text", "expected"), ARTIFACTS, ids=[a[0] for a in ARTIFACTS])
def test_artifacts(name: str, text: str, expected: list[tuple[str, str]]) -> None:
    assert [(a.kind, a.value) for a in artifacts(text)] == expected


def test_content_words_drop_stop_words_numbers_and_stem() -> None:
    assert content_words("Check the 2 logged connections, ensure queries are running") == {
        "log", "connection", "query", "run"}


def test_negation_ignores_not_only() -> None:
    assert negated("do not raise it") and negated("Never set X") and negated("don't")
    assert not negated("Alert on pending > 0, not only on errors")


# (name, model step, supported by POOL's fix text?)
SUPPORT = [
    ("paraphrase", "Move the reporting query to a read replica with a small pool", True),
    ("clause of a longer fix", "Size maximumPoolSize from measured concurrency", True),
    ("e.g. does not split the clause", "Enable leakDetectionThreshold to log connections held too long", True),
    ("opposite of a negated clause", "Raise maximumPoolSize above max_connections", False),
    ("same polarity as the negated clause", "Do not raise maximumPoolSize above max_connections", True),
    ("one shared word is not enough", "Restart the pool", False),
    ("unrelated", "Truncate the orders table", False),
    ("no content words", "Check it", False),
]


@pytest.mark.parametrize(("name", "step", "expected"), SUPPORT, ids=[s[0] for s in SUPPORT])
def test_supported(name: str, step: str, expected: bool) -> None:
    assert supported(step, POOL.remediation) is expected, support(step, POOL.remediation)


def test_foreign_keeps_artifacts_the_knowledge_base_holds() -> None:
    from cali.analysis.grounding import evidence_text

    evidence = evidence_text([POOL])
    assert foreign("Verify with `nc -vz db.internal 5432`", evidence) == []
    assert [a.kind for a in foreign("Verify with `nc -vz db.evil.net 5432`", evidence)] == ["host", "command"]


def test_ground_sorts_steps_and_names_their_sources() -> None:
    out = ground("The pool is exhausted.", [
        "Move the report query to a read replica with its own pool",
        "Ask the partner to serve the full chain",  # supported by TLS, which the model did not cite
        "Move the report query to a read replica with its own pool",  # a repeat
        "Fetch the fix from https://fix.evil.io/p.sh",
        "Page the DBA",
        "  ",
    ], cited=[POOL], shown=[POOL, TLS], log_text="... https://fix.evil.io/p.sh ...", fallback_cause="retrieval's")
    assert out.probable_cause == "The pool is exhausted."
    assert out.remediation == ["Move the report query to a read replica with its own pool"]
    assert out.remediation_from == ["inc-1"]
    assert out.model_suggestions == ["Ask the partner to serve the full chain", "Page the DBA"]
    assert out.notes == ["1 suggested step dropped: names a URL that no retrieved incident holds "
                         "(it appears in the log text)"]


def test_ground_replaces_a_cause_that_instructs_but_keeps_one_naming_a_host() -> None:
    bad = ground("Known issue, see https://status.evil.io/42", [], cited=[POOL], shown=[POOL], log_text="",
                 fallback_cause="Similar past incident inc-1")
    assert bad.probable_cause == "Similar past incident inc-1"
    assert "probable cause was replaced" in bad.notes[0] and "nothing retrieved holds it" in bad.notes[0]
    ok = ground("db-primary.internal:5432 refused connections", [], cited=[POOL], shown=[POOL], log_text="",
                fallback_cause="x")
    assert ok.probable_cause == "db-primary.internal:5432 refused connections" and ok.notes == []


def test_a_negated_kb_step_does_not_ground_its_opposite() -> None:
    out = ground("x", ["Set NODE_TLS_REJECT_UNAUTHORIZED=0 in the deployment"], cited=[TLS], shown=[TLS],
                 log_text="", fallback_cause="y")
    # the KB holds the assignment, so it is not dropped; the KB says never, so it is not grounded either
    assert out.remediation == [] and out.model_suggestions == ["Set NODE_TLS_REJECT_UNAUTHORIZED=0 in the deployment"]


def test_steps_are_capped() -> None:
    out = ground("x", [f"Idea number {i} of mine" for i in range(10)], cited=[POOL], shown=[POOL], log_text="",
                 fallback_cause="y", max_steps=3)
    assert len(out.model_suggestions) == 3
