from datetime import UTC, datetime

from cali.core.fingerprint import exception_signature, grouping_text, incident_fingerprint, incident_key, route
from cali.core.records import LogRecord

T = datetime(2026, 11, 26, tzinfo=UTC)


def rec(message: str, stack: str | None = None, service: str = "orders-api", level: str = "ERROR") -> LogRecord:
    return LogRecord(timestamp=T, level=level, service=service, message=message, stack=stack)


def test_grouping_text_adds_the_exception_line_behind_a_generic_header():
    pool = rec("Request failed", "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not "
                                  "available\n\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException")
    npe = rec("Request failed", "java.lang.NullPointerException: Cannot invoke \"String.length()\"\n\tat a.B.c")
    assert grouping_text(pool) != grouping_text(npe)
    assert grouping_text(pool).startswith("Request failed | java.sql.SQLTransientConnectionException")
    assert grouping_text(rec("Request failed")) == "Request failed"


def test_grouping_text_is_redacted_before_anything_is_mined_or_stored():
    text = grouping_text(rec("login failed password=hunter2 for bob@example.com",
                             "ValueError: token=sk-proj-abcdefghijklmnopqrstuvwx"))
    assert "hunter2" not in text and "bob@example.com" not in text and "sk-proj-abc" not in text
    assert "[REDACTED:" in text


def test_python_traceback_signature_is_the_last_line():
    stack = ("Traceback (most recent call last):\n  File \"/app/x.py\", line 3, in f\n    g()\n"
             "KeyError: 'sku-123'")
    assert exception_signature(stack) == "KeyError: 'sku-123'"


def test_route_by_service_is_stable_in_range_and_spreads():
    assert route("orders-api", 1) == 0
    assert all(0 <= route(f"svc-{i}", 4) < 4 and route(f"svc-{i}", 4) == route(f"svc-{i}", 4) for i in range(50))
    assert len({route(f"svc-{i}", 4) for i in range(50)}) == 4


def test_incident_identity():
    key = incident_key("orders-api", "ERROR", "g7")
    assert key == "orders-api|ERROR|g7"
    assert incident_fingerprint(key) == incident_fingerprint(key) != incident_fingerprint("orders-api|WARN|g7")
