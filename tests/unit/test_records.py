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


NUMERIC_LEVELS = [
    # (key, value, expected): what a number means depends on who wrote it, which the key tells
    ("level", 10, Level.TRACE), ("level", 20, Level.DEBUG), ("level", 30, Level.INFO), ("level", 40, Level.WARN),
    ("level", 50, Level.ERROR), ("level", 60, Level.FATAL), ("level", "50", Level.ERROR),  # pino, bunyan
    ("levelno", 10, Level.DEBUG), ("levelno", 20, Level.INFO), ("levelno", 30, Level.WARN),
    ("levelno", 40, Level.ERROR), ("levelno", 50, Level.FATAL), ("levelno", 25, Level.INFO),  # Python logging
    ("level_number", 40, Level.ERROR),  # structlog's add_log_level_number
    ("severity_number", 9, Level.INFO), ("severity_number", 17, Level.ERROR),  # OpenTelemetry
    ("SeverityNumber", 13, Level.WARN), ("severity_number", 24, Level.FATAL),
]


@pytest.mark.parametrize("key,value,expected", NUMERIC_LEVELS)
def test_numeric_levels_by_the_key_they_came_in(key, value, expected):
    raw = {"time": "2026-11-26T12:00:00Z", "service": "a", "message": "m", key: value}
    assert LogRecord.model_validate(normalize(raw)).level is expected


def test_a_level_name_wins_over_a_number():
    raw = {"time": "2026-11-26T12:00:00Z", "service": "a", "message": "m", "levelno": 40, "levelname": "ERROR"}
    r = LogRecord.model_validate(normalize(raw))
    assert r.level is Level.ERROR and r.attributes == {"levelno": 40}


def test_event_id_is_not_taken_from_the_payload():
    raw = {"ts": 1764158400.123, "level": "error", "service": "gw", "msg": "m", "host": "h", "event_id": "x1",
           "eventId": "biz-7"}
    r = LogRecord.model_validate(normalize(raw))
    assert r.event_id == "" and r.attributes == {"event_id": "x1", "eventId": "biz-7"}


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


UNPARSED = [
    ("plain", "connection pool warmed up", None, Level.INFO),
    ("severity word", "2026-11-26 12:00:00 ERROR something odd happened", None, Level.ERROR),
    ("warning word", "[WARNING] disk 91% full", None, Level.WARN),
    ("lower case is prose", "no error here, all fine", None, Level.INFO),
    ("joined stack", "Exception in thread main", "java.lang.RuntimeException: x\n\tat a.B.c(B.java:1)", Level.ERROR),
]


@pytest.mark.parametrize("name,message,stack,expected", UNPARSED, ids=[u[0] for u in UNPARSED])
def test_a_line_no_format_parsed_is_kept_with_a_level(name, message, stack, expected):
    raw = {"message": message + ("\n" + stack if stack else ""), "service": "legacy-app",
           "@ingested": "2026-11-26T12:00:00.000Z", "log_file": "/var/log/legacy.log", "log_offset": 120}
    r = LogRecord.model_validate(normalize(raw))
    assert r.level is expected and r.message == message
