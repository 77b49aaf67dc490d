from datetime import UTC, datetime

import orjson

from cali.core.clock import FakeClock
from cali.core.fingerprint import route
from cali.core.incidents import Candidate, IncidentBook
from cali.core.records import LogRecord
from cali.service.tracker import TrackerService
from tests.unit.fakes import MemoryOutbox, MemoryState

T0 = datetime(2026, 11, 26, 12, tzinfo=UTC)


def cand(message, stack=None, service="orders-api", n=0, shard="s0", origin=None):
    r = LogRecord(timestamp=T0, level="ERROR", service=service, message=message, stack=stack,
                  event_id=f"{shard}:{n}:0")
    return Candidate(r, shard, (n, 0), origin)


def book():
    return IncidentBook(FakeClock(T0), window_s=300)


def test_same_failure_with_other_ids_is_one_incident():
    b = book()
    out = b.ingest([cand(f"Payment {1000 + i} declined by gateway after {20 + i}ms", n=i) for i in range(20)])
    assert len(out.alerts) == 1 and b.suppressed == 19 and len(set(out.keys)) == 1
    assert "<" in out.alerts[0].template  # the variable parts are masked in the template


def test_distinct_exceptions_behind_one_generic_header_stay_apart():
    b = book()
    npe = "java.lang.NullPointerException: Cannot invoke \"Order.id()\" because \"o\" is null\n\tat a.B.c(B.java:1)"
    pool = "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available\n\tat x.Y.z"
    out = b.ingest([cand("Request processing failed", npe, n=1), cand("Request processing failed", pool, n=2)])
    assert len(out.alerts) == 2 and len({a.incident_key for a in out.alerts}) == 2


def test_a_replayed_batch_counts_once():
    """A reader's timeout re-sends the whole batch: the tracker drops what it counted, by position."""
    b = book()
    batch = [cand(f"Timeout calling inventory after {i}ms", n=i) for i in range(5)]
    first = b.ingest(batch)
    again = b.ingest(batch + [cand("Timeout calling inventory after 9ms", n=5)])
    assert len(first.alerts) == 1 and again.alerts == [] and again.replays == 5 and again.counted == 1
    assert b.throttler.windows[first.keys[0]].count == 6
    assert again.keys[:5] == first.keys  # a replay still gets its incident key, for the archive


def test_watermarks_are_per_shard_and_a_producer_retry_on_another_shard_counts_once():
    b = book()
    b.ingest([cand("disk full on /data", n=10, shard="s0", origin="o1")])
    out = b.ingest([cand("disk full on /data", n=3, shard="s1", origin="o1"),  # the same line, put twice
                    cand("disk full on /data", n=4, shard="s1", origin="o2")])
    assert out.replays == 1 and out.counted == 1 and b.throttler.windows[out.keys[0]].count == 2


def test_identical_lines_in_the_same_millisecond_are_two_occurrences():
    b = book()
    out = b.ingest([cand("upstream returned 502", n=7), cand("upstream returned 502", n=8)])
    assert len(out.alerts) == 1 and b.throttler.windows[out.keys[0]].count == 2


def test_alert_ids_of_two_windows_never_collide():
    clock = FakeClock(T0)
    b = IncidentBook(clock, window_s=60)
    (a1,) = b.ingest([cand("queue lag high", n=1)]).alerts
    clock.advance(61)
    (a2,) = b.ingest([cand("queue lag high", n=2)]).alerts
    assert a1.alert_id != a2.alert_id and a1.incident_key == a2.incident_key


def test_state_is_one_small_item_per_window_group_and_shard():
    state, outbox = MemoryState(), MemoryOutbox()
    svc = TrackerService(IncidentBook(FakeClock(T0)), state, outbox, "tracker/s/0")
    svc.restore()
    big_stack = "java.lang.IllegalStateException: x\n" + "\tat a.b.C.d(C.java:1)\n" * 2900  # 64 KB
    stack = "java.lang.IllegalStateException: x\n" + "\tat a.b.C.d(C.java:1)\n" * 90  # 2 KB
    svc.ingest([cand(distinct(i), big_stack if i % 100 == 0 else stack, service=f"svc-{i % 50}", n=i)
                for i in range(2000)])
    items = state.scopes["tracker/s/0"]
    windows = [n for n in items if n.startswith("w|")]
    assert len(windows) == 2000 and len(outbox.items) == 2000
    assert max(len(orjson.dumps(v)) for v in items.values()) < 40_000  # DynamoDB's limit is 400 KB
    # a later batch writes only what it changed
    svc.ingest([cand(distinct(1), big_stack, service="svc-1", n=5000)])
    scope, puts, deletes = state.commits[-1]
    assert len([n for n in puts if n.startswith("w|")]) == 1 and not deletes


def distinct(i: int) -> str:
    """A message no other i of its service shares a template with: within a service (i % 50) each i has
    its own length, and messages of different lengths are never one template."""
    return " ".join(["failed"] * (i // 50 + 1)) + " at stage"


def test_a_restart_resumes_windows_groups_and_watermarks():
    state, outbox = MemoryState(), MemoryOutbox()
    clock = FakeClock(T0)
    svc = TrackerService(IncidentBook(clock), state, outbox, "tracker/s/0")
    svc.restore()
    keys = svc.ingest([cand("Timeout talking to inventory after 3001ms", n=1)])
    again = TrackerService(IncidentBook(clock), state, outbox, "tracker/s/0")
    assert again.restore() > 0
    assert again.ingest([cand("Timeout talking to inventory after 3001ms", n=1)]) == keys  # replay: dropped
    assert again.ingest([cand("Timeout talking to inventory after 9ms", n=2)]) == keys  # same group id
    assert len(outbox.items) == 1 and again.book.throttler.windows[keys[0]].count == 2
    clock.advance(301)
    assert again.tick() == 1  # the summary of the window opened before the restart
    assert not [n for n in state.scopes["tracker/s/0"] if n.startswith("w|")]  # closed windows are deleted


def test_nothing_persisted_or_alerted_holds_a_secret():
    state, outbox = MemoryState(), MemoryOutbox()
    svc = TrackerService(IncidentBook(FakeClock(T0)), state, outbox, "t")
    svc.restore()
    secret = "postgres://orders:hunter2secret@db.internal:5432/orders"
    stack = ("psycopg2.OperationalError: for user bob@example.com\n"
             "  token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc123def456")
    svc.ingest([cand(f"cannot connect to {secret} as bob@example.com", stack)])
    stored = orjson.dumps(state.scopes["t"]).decode() + "".join(a.model_dump_json() for a in outbox.items.values())
    for leaked in ("hunter2secret", "bob@example.com", "eyJhbGciOiJIUzI1NiJ9"):
        assert leaked not in stored  # neither the windows, the template groups, nor the alerts
    assert "[REDACTED:" in stored and "db.internal" in stored


def test_two_trackers_one_incident_one_alert():
    """Routing and grouping share one identity: every record of a service reaches the one tracker that
    groups that service, so variants that only its miner can merge still make one incident."""
    books = [book(), book()]
    variants = [cand(f"Slow query on shard {s} took {ms}ms", n=i)
                for i, (s, ms) in enumerate([("db-3", 3001), ("db-12", 12), ("db-7", 77)])]
    alerts = []
    for c in variants:
        alerts += books[route(c.record.service, 2)].ingest([c]).alerts
    assert len(alerts) == 1
