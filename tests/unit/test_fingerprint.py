from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from cali.core.fingerprint import exception_signature, fingerprint, route
from cali.core.records import LogRecord

T = datetime(2026, 11, 26, tzinfo=UTC)


def rec(message: str, stack: str | None = None, service: str = "orders-api", level: str = "ERROR") -> LogRecord:
    return LogRecord(timestamp=T, level=level, service=service, message=message, stack=stack)


@given(st.integers(0, 10**9), st.uuids(), st.integers(1, 60000), st.ip_addresses(v=4))
def test_stable_across_variable_values(order_id, uid, ms, ip):
    a = rec(f"Order {order_id} failed for user {uid} after {ms}ms from {ip}")
    b = rec("Order 1 failed for user 00000000-0000-0000-0000-000000000000 after 5ms from 10.0.0.1")
    assert fingerprint(a) == fingerprint(b)


def test_distinct_errors_differ():
    base = rec("Request failed", "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not "
                                  "available\n\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException")
    other = rec("Request failed", "java.lang.NullPointerException: Cannot invoke \"String.length()\"\n\tat a.B.c")
    assert fingerprint(base) != fingerprint(other)
    assert fingerprint(base) != fingerprint(rec("Request failed", base.stack, service="payments-service"))
    assert fingerprint(base) != fingerprint(rec("Request failed", base.stack, level="WARN"))


def test_python_traceback_signature_is_the_last_line():
    stack = ("Traceback (most recent call last):\n  File \"/app/x.py\", line 3, in f\n    g()\n"
             "KeyError: 'sku-123'")
    assert exception_signature(stack) == "KeyError: 'sku-123'"


def test_route_is_stable_and_in_range():
    fp = fingerprint(rec("x"))
    assert route(fp, 1) == 0
    assert 0 <= route(fp, 4) < 4 and route(fp, 4) == route(fp, 4)


def test_the_kind_of_id_does_not_change_the_fingerprint():
    # an all-digit id masks as <num>, a hex one as <id>: the same failure all the same
    assert fingerprint(rec("payment call failed for request 77748719")) == \
        fingerprint(rec("payment call failed for request 5455b95a"))
