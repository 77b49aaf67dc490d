from datetime import UTC, datetime, timedelta

from cali.core.alerts import AlertKind
from cali.core.clock import FakeClock
from cali.core.incidents import Candidate, IncidentBook
from cali.core.records import LogRecord

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def cand(msg="payment 17 failed", service="pay", n=0, level="ERROR"):
    r = LogRecord(timestamp=T0 + timedelta(seconds=n), level=level, service=service, message=msg,
                  event_id=f"e{service}{n}{msg}")
    return Candidate(r)


def test_first_alerts_repeats_counted_summary_at_window_close():
    clock = FakeClock(T0)
    book = IncidentBook(clock, window_s=300)
    first = book.ingest([cand(n=0)]).alerts
    assert [a.kind for a in first] == [AlertKind.FIRST]
    for i in range(1, 58):
        clock.advance(1)
        assert book.ingest([cand(n=i)]).alerts == []
    clock.advance(300 - 57 - 1)
    assert book.tick() == []  # 299 s: still open
    clock.advance(1)
    (summary,) = book.tick()
    assert summary.kind is AlertKind.SUMMARY and summary.suppressed == 57 and summary.count == 58
    assert summary.last_seen == T0 + timedelta(seconds=57)
    # after the window, the next occurrence alerts again
    assert [a.kind for a in book.ingest([cand(n=400)]).alerts] == [AlertKind.FIRST]


def test_no_summary_without_repeats_and_incidents_are_independent():
    clock = FakeClock(T0)
    book = IncidentBook(clock, window_s=60)
    alerts = book.ingest([cand("a x"), cand("b y"), cand("a x", service="other")]).alerts
    assert len(alerts) == 3
    clock.advance(61)
    assert book.tick() == []


def test_state_round_trip_does_not_realert():
    clock = FakeClock(T0)
    book = IncidentBook(clock, window_s=300)
    book.ingest([cand(n=0)])
    clock.advance(10)
    restored = IncidentBook(clock, window_s=300)
    puts, _ = book.changes()
    restored.load(puts)
    assert restored.ingest([cand(n=1)]).alerts == []
    clock.advance(300)
    (summary,) = restored.tick()
    assert summary.suppressed == 1


def test_alert_ids_are_replay_stable():
    a1 = IncidentBook(FakeClock(T0)).ingest([cand(n=0)]).alerts[0]
    a2 = IncidentBook(FakeClock(T0 + timedelta(hours=1))).ingest([cand(n=0)]).alerts[0]
    assert a1.alert_id == a2.alert_id


def test_bounded_keys_close_oldest_first():
    clock = FakeClock(T0)
    book = IncidentBook(clock, window_s=300, max_keys=2)
    for i in range(3):
        book.ingest([cand(f"m{i} x", n=i), cand(f"m{i} x", n=i + 100)])
    assert len(book.throttler.windows) <= 2


def test_a_repeat_after_the_window_expired_still_gets_the_summary_first():
    clock = FakeClock(T0)
    book = IncidentBook(clock, window_s=300)
    book.ingest([cand(n=0)])
    clock.advance(10)
    book.ingest([cand(n=1)])
    clock.advance(300)  # expired, and no tick ran in between
    kinds = [a.kind for a in book.ingest([cand(n=2)]).alerts]
    assert kinds == [AlertKind.SUMMARY, AlertKind.FIRST]


def test_a_failed_outbox_write_rolls_the_tracker_back_so_the_retry_alerts():
    import pytest

    from cali.service.tracker import TrackerService
    from tests.unit.fakes import MemoryOutbox, MemoryState

    class FailOnce(MemoryOutbox):
        failed = False

        def enqueue(self, alerts):
            if not self.failed:
                self.failed = True
                raise OSError("outbox unavailable")
            super().enqueue(alerts)

    outbox = FailOnce()
    svc = TrackerService(IncidentBook(FakeClock(T0)), MemoryState(), outbox, "t")
    svc.restore()
    with pytest.raises(OSError):
        svc.ingest([cand(n=0)])
    assert svc.ingest([cand(n=0)]) == ["pay|ERROR|g1"]  # retried by the reader: still a FIRST alert
    assert [a.kind for a in outbox.pending(10)] == [AlertKind.FIRST]
