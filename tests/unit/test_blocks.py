"""Block Kit rendering: a first alert, a summary, escaping, limits, fallback text, dashboard link."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cali.core.alerts import Alert, AlertKind, Severity
from cali.core.records import Level
from cali.notify.blocks import (
    MAX_BLOCKS,
    MAX_FIELD_TEXT,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    escape,
    fit,
    render_alert,
    slack_date,
    window_words,
)
from tests.support.slack_view import text_objects

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 1, 12, 4, 30, tzinfo=UTC)


def make_alert(**over: object) -> Alert:
    base: dict[str, object] = dict(
        alert_id="a-1", kind=AlertKind.FIRST, incident_key="checkout|ERROR|g1", fingerprint="fp123",
        service="checkout", level=Level.ERROR, severity=Severity.HIGH,
        message="Payment failed for order <id> & user <name>", template="Payment failed for order <*>",
        stack_head=["java.lang.IllegalStateException: boom", "  at com.shop.Pay.charge(Pay.java:42)"],
        count=1, first_seen=T0, last_seen=T0, created_at=T0, trace_id="4bf92f3577b34da6",
        host="ip-10-0-0-1", env="prod",
    )
    base.update(over)
    return Alert(**base)  # type: ignore[arg-type]


def all_text(blocks: list[dict]) -> str:
    """Every text string in the blocks, one per line (what a reader could see)."""
    return "\n".join(t["text"] for t in text_objects(blocks))


def section_texts(blocks: list[dict]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]


def assert_within_limits(msg) -> None:  # noqa: ANN001
    assert len(msg.blocks) <= MAX_BLOCKS
    for block in msg.blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= MAX_HEADER_TEXT
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= MAX_SECTION_TEXT
        for field in block.get("fields", []):
            assert len(field["text"]) <= MAX_FIELD_TEXT
    assert len(msg.text) <= 4000


# (name, alert overrides, strings the blocks must contain, strings the fallback text must contain)
RENDER_CASES = [
    ("first alert", {},
     [":red_circle: HIGH · checkout · ERROR", "`checkout`", "*Count*\n1", "`prod`", "`ip-10-0-0-1`",
      "`4bf92f3577b34da6`", "Pay.java:42", "First seen <!date^1772366400^{date_short_pretty} {time}|"
      "2026-03-01 12:00:00 UTC>"],
     ["[HIGH] checkout ERROR: Payment failed", "trace_id=4bf92f3577b34da6"]),
    ("critical fatal", {"level": Level.FATAL, "severity": Severity.CRITICAL},
     [":rotating_light: CRITICAL · checkout · FATAL"], ["[CRITICAL] checkout FATAL"]),
    ("summary", {"kind": AlertKind.SUMMARY, "suppressed": 57, "count": 58, "last_seen": T1},
     ["Repeated: checkout", "*×57 more* in 5 min, last at <!date^1772366670^{time}|2026-03-01 12:04:30 UTC>",
      "58 in window"],
     ["(×57 more in 5 min, last at 2026-03-01 12:04:30 UTC)"]),
    ("no optional fields", {"trace_id": None, "host": None, "env": None, "stack_head": []},
     ["*Env*\n—", "*Host*\n—"], ["[HIGH] checkout ERROR"]),
]


@pytest.mark.parametrize(("name", "over", "in_blocks", "in_text"), RENDER_CASES, ids=[c[0] for c in RENDER_CASES])
def test_render_table(name: str, over: dict, in_blocks: list[str], in_text: list[str]) -> None:
    msg = render_alert(make_alert(**over))
    blob = all_text(msg.blocks)
    for expected in in_blocks:
        assert expected in blob, expected
    for expected in in_text:
        assert expected in msg.text, (expected, msg.text)
    assert_within_limits(msg)


def test_summary_has_no_trace_field_when_absent_and_first_has_no_repeat_line() -> None:
    first = render_alert(make_alert())
    assert "more* in" not in all_text(first.blocks)
    assert "Trace" not in all_text(render_alert(make_alert(trace_id=None)).blocks)


ESCAPE_CASES = [
    ("ampersand", "a & b", "a &amp; b"),
    ("angle brackets", "<tag>", "&lt;tag&gt;"),
    ("mention injection", "<!channel> ping", "&lt;!channel&gt; ping"),
    ("link injection", "<http://evil|click>", "&lt;http://evil|click&gt;"),
    ("already escaped stays literal", "&amp;", "&amp;amp;"),
    ("plain", "nothing to do", "nothing to do"),
]


@pytest.mark.parametrize(("name", "raw", "expected"), ESCAPE_CASES, ids=[c[0] for c in ESCAPE_CASES])
def test_escape(name: str, raw: str, expected: str) -> None:
    assert escape(raw) == expected


def test_message_is_escaped_in_blocks_and_fallback() -> None:
    msg = render_alert(make_alert(message="<!here> x < y && z > 0"))
    text = "\n".join(section_texts(msg.blocks))
    assert "&lt;!here&gt; x &lt; y &amp;&amp; z &gt; 0" in text
    assert "<!here>" not in text and "<!here>" not in msg.text
    assert "&lt;!here&gt;" in msg.text


def test_triple_backticks_in_message_cannot_close_the_code_block() -> None:
    msg = render_alert(make_alert(message="before ``` after"))
    code = section_texts(msg.blocks)[0]
    assert code.startswith("```") and code.endswith("```")
    assert code[3:-3].count("```") == 0


FIT_CASES = [
    ("short", "abc", 10, "abc"),
    ("exact", "abcde", 5, "abcde"),
    ("cut", "abcdefgh", 5, "abcd…"),
    ("entity never split", "abc&def", 6, "abc…"),
    ("entity kept whole", "ab&cdef", 8, "ab&amp;…"),
]


@pytest.mark.parametrize(("name", "raw", "limit", "expected"), FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_fit(name: str, raw: str, limit: int, expected: str) -> None:
    out = fit(raw, limit)
    assert out == expected
    assert len(out) <= limit


def test_huge_message_and_stack_respect_slack_limits() -> None:
    alert = make_alert(
        message="<&>" * 20_000,
        stack_head=[f"  at frame{i}(" + "x" * 1000 + ")" for i in range(100)],
        service="s" * 500, host="h" * 500, env="e" * 500, trace_id="t" * 500, fingerprint="f" * 500,
    )
    msg = render_alert(alert, dashboard_url_template="https://dash.example/{service}/{trace_id}")
    assert_within_limits(msg)
    code = section_texts(msg.blocks)[0]
    assert code.endswith("…```")
    stack = section_texts(msg.blocks)[1]
    assert stack.count("\n  at frame") == 7  # 8 frames shown, the rest counted
    assert "… 92 more frame(s)" in stack


def test_dashboard_link_fills_and_quotes_the_template() -> None:
    alert = make_alert(service="check out", trace_id="abc/def", fingerprint="fp&1")
    msg = render_alert(alert, "https://dash.local/incidents?service={service}&trace={trace_id}&fp={fingerprint}")
    link = section_texts(msg.blocks)[-1]
    assert link == ("<https://dash.local/incidents?service=check%20out&trace=abc%2Fdef&fp=fp%261"
                    "|Open in the CALI dashboard>")


def test_no_dashboard_link_without_template_or_with_a_link_breaking_one() -> None:
    assert "dashboard" not in all_text(render_alert(make_alert()).blocks)
    assert "dashboard" not in all_text(render_alert(make_alert(), "https://x/{service}|oops").blocks)


@pytest.mark.parametrize(("seconds", "words"), [(300, "5 min"), (60, "1 min"), (3600, "1 h"), (90, "90 s")])
def test_window_words(seconds: int, words: str) -> None:
    assert window_words(seconds) == words


def test_slack_date_naive_datetime_is_utc() -> None:
    assert slack_date(datetime(2026, 3, 1, 12, 0, 0)).text == (
        "<!date^1772366400^{date_short_pretty} {time}|2026-03-01 12:00:00 UTC>"
    )


@pytest.mark.parametrize("tricky", ["a < b && c > d", "&lt;already&gt;", "<@U123> <!here> <!channel>",
                                    "<!date^1700000000^{date}|then>", "<https://evil.example|click>", "`code` here"])
def test_first_alert_block_kit_shows_log_text_once_and_never_pings(tricky: str) -> None:
    from tests.support.slack_view import check_block_kit, reader_view, what_a_reader_sees

    msg = render_alert(make_alert(message=tricky, host=tricky, trace_id=None), "https://dash.local/{service}")
    check_block_kit(msg.blocks)
    seen = what_a_reader_sees(msg.blocks)
    assert tricky in seen.text
    assert seen.mentions == []
    assert seen.links == ["https://dash.local/checkout"]  # our own link only
    assert len(seen.dates) == 2  # first and last seen
    fallback = reader_view(msg.text)
    assert tricky in fallback.text and not fallback.mentions and not fallback.links and not fallback.dates
