from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from cali.core.records import Level, LogRecord, normalize, parse_level, parse_timestamp, validation_reason

T = datetime(2026, 11, 26, 12, 0, 0, 123000, tzinfo=UTC)

TIMESTAMPS = [
    ("iso-z", "2026-11-26T12:00:00.123Z", T),
    ("iso-offset", "2026-11-26T13:00:00.123+01:00", T),
    ("iso-naive-is-utc", "2026-11-26T12:00:00.123", T),
    ("epoch-s", 1795694400.123, T),
    ("epoch-ms", 1795694400123, T),
    ("epoch-ms-string", "1795694400123", T),
    ("logback", "2026-11-26 12:00:00.123", T),
    ("python-logging", "2026-11-26 12:00:00,123", T),
    ("nginx-error", "2026/11/26 12:00:00", T.replace(microsecond=0)),
    ("nginx-access", "26/Nov/2026:12:00:00 +0000", T.replace(microsecond=0)),
]


@pytest.mark.parametrize("name,value,expected", TIMESTAMPS, ids=[t[0] for t in TIMESTAMPS])
def test_timestamps(name, value, expected):
    got = parse_timestamp(value)
    assert got == expected and got.tzinfo is not None


LEVELS = [("WARNING", Level.WARN), ("warn", Level.WARN), ("W", Level.WARN), ("err", Level.ERROR),
          ("E", Level.ERROR), ("CRITICAL", Level.FATAL), ("fatal", Level.FATAL), ("50", Level.ERROR),
          (40, Level.WARN), ("information", Level.INFO), ("dpanic", Level.FATAL), ("Trace", Level.TRACE)]


@pytest.mark.parametrize("value,expected", LEVELS)
def test_levels(value, expected):
    assert parse_level(value) is expected


def test_multiline_message_splits_into_message_and_stack():
    r = LogRecord.model_validate(normalize({"time": "2026-11-26 12:00:00.123", "level": "ERROR", "service": "a",
                                            "message": "boom\njava.lang.IllegalStateException: x\n\tat a.B(B.java:1)"}))
    assert r.message == "boom"
    assert r.stack.startswith("java.lang.IllegalStateException")


def test_event_id_is_deterministic_and_given_one_wins():
    raw = {"ts": 1764158400.123, "level": "error", "service": "gw", "msg": "m", "host": "h"}
    a, b = (LogRecord.model_validate(normalize(raw)) for _ in range(2))
    assert a.event_id == b.event_id and len(a.event_id) == 32
    assert LogRecord.model_validate(normalize({**raw, "event_id": "x1"})).event_id == "x1"


def test_aliases_and_attributes():
    r = LogRecord.model_validate(normalize({"time": 1764158400123, "level": 50, "service": "web-bff", "msg": "failed",
                                            "err": {"type": "Error", "message": "x", "stack": "Error: x\n    at f"},
                                            "pid": 12, "route": "/a"}))
    assert r.level is Level.ERROR and r.stack.startswith("Error: x") and r.attributes == {"pid": 12, "route": "/a"}


def test_nginx_access_level_from_status():
    assert LogRecord.model_validate(normalize({"time": "26/Nov/2026:12:00:00 +0000", "status": "502",
                                               "service": "edge", "message": "GET /"})).level is Level.ERROR


def test_validation_reason_names_fields():
    with pytest.raises(ValidationError) as e:
        LogRecord.model_validate({"timestamp": "yesterday", "level": "loud", "service": "", "message": "m"})
    reason = validation_reason(e.value)
    for field in ("timestamp:", "level:", "service:"):
        assert field in reason
