"""Multiline joining and header parsing, driven by the fixtures in tests/fixtures/multiline/."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from cali.core.parsing import FORMATS, MultilineJoiner, parse_event, to_kinesis_data
from cali.core.records import LogRecord, normalize

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "multiline"
CASES = sorted(p.stem for p in FIXTURES.glob("*.log"))
INGESTED = "2026-11-26T12:30:00.000Z"
ECOSYSTEMS = {
    "logback": "java",
    "python": "python",
    "zap": "go",
    "pino": "node",
    "winston": "node",
    "nginx_error": "nginx",
}


def _join(fmt_name: str, text: str) -> list[str]:
    joiner = MultilineJoiner(FORMATS[fmt_name])
    events: list[str] = []
    for line in text.split("\n")[:-1]:  # the file ends with a newline
        events += joiner.feed(line, now=0.0)
    events += joiner.flush(now=0.0, force=True)
    assert not joiner.pending
    return events


def test_fixture_table_covers_the_four_ecosystems() -> None:
    assert len(CASES) >= 20
    seen = {ECOSYSTEMS[json.loads((FIXTURES / f"{c}.json").read_text())["format"]] for c in CASES}
    assert {"java", "python", "go", "node"} <= seen


@pytest.mark.parametrize("case", CASES)
def test_fixture_joins_and_parses(case: str) -> None:
    spec = json.loads((FIXTURES / f"{case}.json").read_text())
    text = (FIXTURES / f"{case}.log").read_text()
    fmt = FORMATS[spec["format"]]
    events = _join(spec["format"], text)
    assert len(events) == len(spec["events"]), events
    assert "\n".join(events) + "\n" == text  # nothing lost, nothing reordered
    for event, want in zip(events, spec["events"], strict=True):
        assert event.count("\n") + 1 == want["lines"]
        raw = parse_event(fmt, event, service=spec["service"], host="host-a", ingested=INGESTED)
        assert "logger" in raw or "level" in raw, f"header did not parse: {event[:200]!r}"
        for key, value in want.get("fields", {}).items():
            assert raw[key] == value, key
        assert orjson.loads(to_kinesis_data(raw)) == raw
        rec = LogRecord.model_validate(normalize(raw))
        assert rec.level.value == want["level"]
        assert rec.service == spec["service"]
        assert rec.message == want["message"]
        head = None if rec.stack is None else rec.stack.split("\n")[0]
        assert head == want["stack_head"]


def test_parse_event_adds_service_host_and_ingested_only_if_absent() -> None:
    fmt = FORMATS["pino"]
    line = '{"level":30,"time":1,"hostname":"h1","service":"svc-a","msg":"m"}'
    rec = parse_event(fmt, line, service="other", host="shipper-host", ingested=INGESTED)
    assert rec["service"] == "svc-a" and rec["hostname"] == "h1" and rec["host"] == "shipper-host"
    assert rec["@ingested"] == INGESTED
    assert parse_event(fmt, line, service="x", host=None, ingested=INGESTED).get("host") is None


@pytest.mark.parametrize(("fmt", "text"), [
    ("logback", "garbage line"),
    ("python", "Traceback (most recent call last):\n  File \"x\""),
    ("pino", "[1,2]"),  # a JSON format whose line is not an object, and no fallback matches
    ("pino", "{not json"),
    ("zap", "plain text from a Go program"),
])
def test_an_event_no_format_parses_is_shipped_whole_as_its_message(fmt: str, text: str) -> None:
    rec = parse_event(FORMATS[fmt], text, service="svc", host="h", ingested=INGESTED, origin=("a.log", 7))
    want = {"message": text, "service": "svc", "host": "h", "log_file": "a.log", "log_offset": 7,
            "@ingested": INGESTED}
    assert rec == {**want, **FORMATS[fmt].defaults}
    fields = normalize(rec)
    assert fields["service"] == "svc" and fields["message"] == text.split("\n")[0]


def test_go_panic_gets_fatal_default_but_json_level_wins() -> None:
    panic = parse_event(
        FORMATS["zap"], "panic: boom\n\ngoroutine 1 [running]:", service="gw", host=None, ingested=INGESTED
    )
    assert panic["level"] == "FATAL" and panic["message"].startswith("panic: boom")
    info = parse_event(
        FORMATS["zap"], '{"level":"info","msg":"ok"}', service="gw", host=None, ingested=INGESTED
    )
    assert info["level"] == "info"


def test_empty_or_unmatched_named_groups_arrive_as_empty_strings() -> None:
    # As Fluent Bit's regex parser with skip_empty_values: false.
    line = "2026/11/26 12:00:00 [warn] 7#7: conflicting server name"
    rec = parse_event(FORMATS["nginx_error"], line, service="edge", host=None, ingested=INGESTED)
    assert rec["connection_id"] == "" and rec["message"] == "conflicting server name"
    line = "2026-11-26 12:00:00.000 ERROR [,,] 1 --- [t] c.a.L : boom"
    rec = parse_event(FORMATS["logback"], line, service="orders-api", host="h", ingested=INGESTED)
    assert rec["trace_id"] == "" and rec["span_id"] == ""
    assert rec["service"] == "orders-api"  # an empty pipeline key is filled as if absent
    assert LogRecord.model_validate(normalize(rec)).trace_id is None


@pytest.mark.parametrize(("line", "service", "host"), [
    ('{"msg":"m","service":"","host":""}', "svc", "shipper"),
    ('{"msg":"m","service":"app","host":"h1"}', "app", "h1"),
    ('{"msg":"m","service":null}', None, "shipper"),  # not a string: kept, as Fluent Bit's condition does
])
def test_pipeline_keys_fill_what_is_absent_or_empty(line: str, service: str | None, host: str) -> None:
    rec = parse_event(FORMATS["pino"], line, service="svc", host="shipper", ingested=INGESTED)
    assert (rec["service"], rec["host"]) == (service, host)


def test_origin_fields_are_set_last() -> None:
    line = '{"msg":"m","log_file":"app says","log_offset":-1}'
    rec = parse_event(FORMATS["pino"], line, service="s", host=None, ingested=INGESTED, origin=("/v/a.log", 42))
    assert (rec["log_file"], rec["log_offset"]) == ("/v/a.log", 42)
    assert "log_file" not in parse_event(FORMATS["pino"], line[:9] + "}", service="s", host=None,
                                         ingested=INGESTED)


def test_joiner_flushes_only_after_idle_time() -> None:
    j = MultilineJoiner(FORMATS["python"], flush_after_s=0.5)
    assert j.feed("2026-11-26 12:00:00,000 ERROR [w] m: boom", now=10.0) == []
    assert j.feed("Traceback (most recent call last):", now=10.2) == []
    assert j.flush(now=10.6) == []  # idle 0.4 s since the last line
    assert j.pending
    assert j.flush(now=10.7) == [
        "2026-11-26 12:00:00,000 ERROR [w] m: boom\nTraceback (most recent call last):"
    ]
    assert not j.pending and j.flush(now=99.0) == []


def test_joiner_force_flush_and_late_continuation() -> None:
    j = MultilineJoiner(FORMATS["logback"], flush_after_s=0.5)
    j.feed("2026-11-26 12:00:00.000 ERROR [s,,] 1 --- [t] L : a", now=0.0)
    assert j.flush(now=0.1, force=True) == ["2026-11-26 12:00:00.000 ERROR [s,,] 1 --- [t] L : a"]
    j.feed("2026-11-26 12:00:01.000 ERROR [s,,] 1 --- [t] L : b", now=1.0)
    # Fluent Bit's timer would have fired: a continuation arriving later starts an event of its own.
    assert j.feed("\tat x.Y(Y.java:1)", now=2.0) == ["2026-11-26 12:00:01.000 ERROR [s,,] 1 --- [t] L : b"]
    assert j.flush(now=2.0, force=True) == ["\tat x.Y(Y.java:1)"]


def test_joiner_caps_lines_and_bytes() -> None:
    j = MultilineJoiner(FORMATS["winston"], max_lines=3, max_bytes=10_000)
    out: list[str] = []
    out += j.feed("2026-11-26T12:00:00.000Z [n] error: e", 0.0)
    for i in range(5):
        out += j.feed(f"    at f{i} (a.js:1:1)", 0.0)
    out += j.flush(0.0, force=True)
    assert [e.count("\n") + 1 for e in out] == [3, 3]
    j = MultilineJoiner(FORMATS["winston"], max_bytes=100)
    out = j.feed("2026-11-26T12:00:00.000Z [n] error: e", 0.0) + j.feed("x" * 80, 0.0) + j.flush(0.0, True)
    assert len(out) == 2


def test_orphan_lines_before_the_first_event_start_are_events_of_their_own() -> None:
    # Fluent Bit's stream has no rule state before its first start line: each such line is flushed
    # alone; after that, continuation lines join (even after a flush by timeout).
    j = MultilineJoiner(FORMATS["python"], flush_after_s=0.5)
    assert j.feed("  File \"x.py\", line 1", 0.0) == ['  File "x.py", line 1']
    assert j.feed("", 0.0) == []  # Fluent Bit makes no record of an empty one
    assert j.feed("ValueError: tail of an earlier trace", 0.0) == ["ValueError: tail of an earlier trace"]
    assert not j.pending
    assert j.feed("2026-11-26 12:00:00,000 ERROR [w] m: boom", 0.0) == []
    assert j.flush(1.0) == ["2026-11-26 12:00:00,000 ERROR [w] m: boom"]
    assert j.feed("late continuation", 2.0) == [] and j.pending
