from datetime import UTC, datetime

from cali.core.clock import FakeClock
from cali.core.fingerprint import fingerprint
from cali.core.incidents import Candidate, IncidentBook, MinerGrouper
from cali.core.records import LogRecord
from cali.grouping.miner import TemplateMiner

T0 = datetime(2026, 11, 26, 12, tzinfo=UTC)


def cand(message, stack=None, service="orders-api", n=0):
    r = LogRecord(timestamp=T0, level="ERROR", service=service, message=message, stack=stack, event_id=f"e{n}")
    return Candidate(r, fingerprint(r))


def book():
    return IncidentBook(FakeClock(T0), grouper=MinerGrouper(TemplateMiner()), window_s=300)


def test_same_failure_with_other_ids_is_one_incident():
    b = book()
    alerts = b.ingest([cand(f"Payment {1000 + i} declined by gateway after {20 + i}ms", n=i) for i in range(20)])
    assert len(alerts) == 1 and b.suppressed == 19
    assert "<" in alerts[0].template  # the variable parts are masked in the template


def test_distinct_exceptions_behind_one_generic_header_stay_apart():
    b = book()
    npe = "java.lang.NullPointerException: Cannot invoke \"Order.id()\" because \"o\" is null\n\tat a.B.c(B.java:1)"
    pool = "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available\n\tat x.Y.z"
    alerts = b.ingest([cand("Request processing failed", npe, n=1), cand("Request processing failed", pool, n=2)])
    assert len(alerts) == 2
    assert len({a.incident_key for a in alerts}) == 2


def test_group_ids_survive_a_restart():
    b = book()
    (first,) = b.ingest([cand("Timeout talking to inventory after 3001ms", n=1)])
    restored = book()
    restored.load_state(b.to_state())
    assert restored.ingest([cand("Timeout talking to inventory after 9ms", n=2)]) == []
    assert list(restored.throttler.windows) == [first.incident_key]


def test_alerts_are_redacted_before_they_leave_the_tracker():
    b = book()
    secret = "postgres://orders:hunter2secret@db.internal:5432/orders"
    stack = ("psycopg2.OperationalError: for user bob@example.com\n"
             "  token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc123def456")
    (alert,) = b.ingest([cand(f"cannot connect to {secret}", stack)])
    text = alert.model_dump_json()
    assert "hunter2secret" not in text and "bob@example.com" not in text and "eyJhbGciOiJIUzI1NiJ9" not in text
    assert "[REDACTED:" in alert.message and "db.internal" in alert.message
