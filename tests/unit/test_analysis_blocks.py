"""The analysis follow-up in Block Kit: escaped once, Slack tokens intact, log text never pings, abstention honest."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cali.core.alerts import Alert, AlertKind, Severity, analysis_alert
from cali.core.records import Level
from cali.notify.blocks import render_alert
from cali.notify.mrkdwn import escape
from tests.support.slack_view import check_block_kit, reader_view, what_a_reader_sees

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def parent(message: str = "Payment failed for order 42", service: str = "checkout") -> Alert:
    return Alert(alert_id="a-1", kind=AlertKind.FIRST, incident_key="checkout|ERROR|g1", fingerprint="fp1",
                 service=service, level=Level.ERROR, severity=Severity.HIGH, message=message,
                 template="Payment failed for order <*>", count=1, first_seen=T0, last_seen=T0, created_at=T0)


def analysis(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "probable_cause": "The HikariCP pool has no free connection.", "category": "db-pool-exhausted",
        "top_categories": ["db-pool-exhausted"], "confidence": 0.82,
        "evidence": ["HikariPool-1 - Connection is not available"], "remediation": ["Raise maximumPoolSize"],
        "remediation_from": ["inc-0001"], "model_suggestions": [], "grounding_notes": [],
        "similar_incident_ids": ["inc-0001"],
        "similar": [{"id": "inc-0001", "category": "db-pool-exhausted", "score": 0.71, "title": "Hikari pool empty"}],
        "similarity_threshold": 0.389, "abstained": False, "mode": "llm", "degraded_reason": None,
    }
    base.update(over)
    return base


def render(a: dict[str, Any], p: Alert | None = None):  # noqa: ANN201
    msg = render_alert(analysis_alert(p or parent(), a, T0))
    check_block_kit(msg.blocks)
    return msg


# (name, where the tricky text goes, the tricky text): the reader must see it exactly as written, once,
# with no mention, link or date parsed out of it.
TRICKY = [
    ("less than", "a < b"),
    ("ampersands", "x && y > 0"),
    ("already escaped text stays literal", "&lt;div&gt; &amp; co"),
    ("a date token in data", "<!date^1700000000^{date}|yesterday>"),
    ("a user mention in data", "ping <@U123ABC> now"),
    ("here and channel", "<!here> <!channel> <!everyone>"),
    ("a group mention", "<!subteam^S0123|oncall>"),
    ("a link in data", "<https://evil.example/x|click here>"),
    ("a code span", "call `rm -rf /` maybe"),
    ("a broken token", "a <b c"),
]
FIELDS = ["message", "probable_cause", "remediation", "model_suggestions", "evidence", "title", "service"]


@pytest.mark.parametrize("where", FIELDS)
@pytest.mark.parametrize(("name", "tricky"), TRICKY, ids=[t[0] for t in TRICKY])
def test_log_and_model_text_reaches_the_reader_once_and_never_pings(name: str, tricky: str, where: str) -> None:
    a, p = analysis(), parent()
    if where == "message":
        p = parent(message=f"boom: {tricky}")
    elif where == "service":
        p = parent(service=f"svc {tricky}")
    elif where == "title":
        a["similar"][0]["title"] = tricky
    elif where == "probable_cause":
        a["probable_cause"] = tricky
    else:
        a[where] = [tricky]
    msg = render(a, p)
    seen = what_a_reader_sees(msg.blocks)
    assert tricky in seen.text
    assert seen.mentions == []
    assert seen.links == []
    assert len(seen.dates) == 1  # only ours: "first seen", shown as its UTC fallback
    assert "2026-03-01 12:00:00 UTC" in seen.text
    raw = "\n".join(t["text"] for t in _mrkdwn(msg.blocks))
    assert escape(tricky) in raw
    if escape(tricky) != tricky:
        assert escape(escape(tricky)) not in raw  # not escaped twice
    fallback = reader_view(msg.text)
    assert fallback.mentions == [] and fallback.links == [] and fallback.dates == []
    if where in ("message", "probable_cause", "service"):
        assert tricky in fallback.text


def _mrkdwn(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from tests.support.slack_view import text_objects

    return [t for t in text_objects(blocks) if t["type"] == "mrkdwn"]


def test_a_less_than_is_escaped_exactly_once() -> None:
    msg = render(analysis(probable_cause="a < b"), parent(message="x < y"))
    raw = "\n".join(t["text"] for t in _mrkdwn(msg.blocks))
    assert "a &lt; b" in raw and "x &lt; y" in raw
    assert "&amp;lt;" not in raw and "&amp;amp;" not in raw
    assert msg.text.count("&lt;") == 2 and "&amp;" not in msg.text


def test_the_date_token_of_the_context_line_is_intact() -> None:
    msg = render(analysis())
    context = msg.blocks[1]["elements"][0]["text"]
    assert "<!date^1772366400^{date_short_pretty} {time}|2026-03-01 12:00:00 UTC>" in context
    assert "&lt;!date" not in context


def test_header_is_plain_text_and_not_escaped() -> None:
    msg = render(analysis(), parent(service="a&b<c>"))
    assert msg.blocks[0]["text"] == {"type": "plain_text", "text": ":mag: Analysis · a&b<c> · ERROR", "emoji": True}


def test_grounded_remediation_names_its_source_and_model_steps_are_marked() -> None:
    msg = render(analysis(remediation=["Raise maximumPoolSize"], remediation_from=["inc-0001"],
                          model_suggestions=["Restart the pods"],
                          grounding_notes=["1 suggested step dropped: it named a URL that no cited incident holds"]))
    seen = what_a_reader_sees(msg.blocks).plain
    assert "Remediation · from inc-0001\n1. Raise maximumPoolSize" in seen
    assert "Suggested by the model · its own idea, in none of the cited incidents: check before acting" in seen
    assert "• Restart the pods" in seen
    assert "1 suggested step dropped: it named a URL that no cited incident holds" in seen


def test_abstaining_analysis_lists_nearest_entries_below_the_threshold_with_scores() -> None:
    similar = [{"id": f"inc-000{i}", "category": "c", "score": 0.33 - i / 100, "title": f"t{i}"} for i in range(3)]
    msg = render(analysis(abstained=True, category=None, probable_cause="No similar past incident found.",
                          similar=similar, mode="retrieval-only"))
    seen = what_a_reader_sees(msg.blocks).plain
    assert "No similar past incident." in seen
    assert "Similar past incidents" not in seen
    assert "Nearest knowledge-base entries (below the similarity threshold 0.39: not matches)" in seen
    assert "inc-0000 t0 (similarity 0.33)" in seen and "inc-0002 t2 (similarity 0.31)" in seen
    assert "Remediation" not in seen and "Probable cause" not in seen


def test_llm_abstaining_over_close_entries_does_not_claim_there_are_none() -> None:
    msg = render(analysis(abstained=True, category=None, similar=[
        {"id": "inc-0009", "category": "c", "score": 0.8, "title": "close one"}]))
    seen = what_a_reader_sees(msg.blocks).plain
    assert "No similar past incident" not in seen
    assert "No probable cause." in seen and "Closest past incidents (none explains this alert)" in seen


def test_degraded_analysis_says_why_in_the_footer() -> None:
    msg = render(analysis(mode="retrieval-only", degraded_reason="llm-daily-budget-exhausted (500 calls/day)"))
    footer = what_a_reader_sees([msg.blocks[-1]]).plain
    assert footer == "Analysis: retrieval only, no LLM · LLM step skipped: llm-daily-budget-exhausted (500 calls/day)."


def test_huge_analysis_stays_within_block_kit_limits() -> None:
    big = "<&>" * 5000
    msg = render(analysis(probable_cause=big, remediation=[big] * 10, model_suggestions=[big] * 10,
                          evidence=[big] * 10, grounding_notes=[big] * 10,
                          similar=[{"id": big, "category": big, "score": 0.5, "title": big}] * 5),
                 parent(message=big, service="s" * 300))
    for block in msg.blocks:
        if block["type"] == "section":
            text = block["text"]["text"]
            assert len(text) <= 3000
            assert text.count("```") % 2 == 0
    assert len(msg.text) <= 40_000


def test_old_payloads_without_the_new_fields_still_render() -> None:
    old = {"probable_cause": "x", "category": "c", "confidence": 0.5, "remediation": ["do y"], "similar": [],
           "abstained": False, "mode": "retrieval-only"}
    seen = what_a_reader_sees(render(old).blocks).plain
    assert "Remediation\n1. do y" in seen
