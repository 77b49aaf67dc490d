import threading
from datetime import UTC, datetime

from cali.core.alerts import AlertKind
from cali.core.clock import FakeClock
from cali.core.incidents import Candidate, IncidentBook
from cali.core.records import LogRecord
from cali.service.followup import AnalysisFollowup
from tests.unit.fakes import MemoryOutbox

T0 = datetime(2026, 11, 26, 12, tzinfo=UTC)
ANALYSIS = {"probable_cause": "pool exhausted", "category": "db-pool-exhausted", "confidence": 0.8,
            "abstained": False, "mode": "retrieval-only"}


class FakeClient:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[dict, bool]] = []
        self.fail = fail

    def analyze(self, record, *, fingerprint, use_llm, timeout_s):
        self.calls.append((record, use_llm))
        if self.fail:
            raise TimeoutError("analyzer did not answer in time")
        return dict(ANALYSIS)


def first_alert(n=0, msg="Connection is not available"):
    r = LogRecord(timestamp=T0, level="ERROR", service="orders-api", message=f"{msg} ({n})",
                  stack="java.sql.SQLTransientConnectionException: HikariPool-1\n\tat a.B(B.java:1)", event_id=f"e{n}")
    clock = FakeClock(T0)
    (alert,) = IncidentBook(clock).ingest([Candidate(r)]).alerts
    return alert


def followup(client, outbox, use_llm=True):
    queued = threading.Event()
    f = AnalysisFollowup(client, outbox, FakeClock(T0), on_queued=queued.set, use_llm=use_llm)
    return f, queued


def test_analysis_follows_a_delivered_first_alert_and_names_it():
    client, outbox = FakeClient(), MemoryOutbox()
    f, queued = followup(client, outbox)
    alert = first_alert()
    f.on_delivered(alert)
    assert queued.wait(5)
    (follow,) = outbox.pending(10)
    assert follow.kind is AlertKind.ANALYSIS and follow.parent_alert_id == alert.alert_id
    assert follow.analysis["category"] == "db-pool-exhausted"
    record, use_llm = client.calls[0]
    assert record["stack"].startswith("java.sql.SQLTransientConnectionException") and use_llm


def test_repeat_fingerprint_uses_the_cache_and_the_budget_is_the_analyzers():
    client, outbox = FakeClient(), MemoryOutbox()
    f, queued = followup(client, outbox, use_llm=False)
    f.on_delivered(first_alert(1))
    assert queued.wait(5)
    queued.clear()
    f.on_delivered(first_alert(2))
    assert queued.wait(5)
    # The follow-up keeps no budget of its own: it passes use_llm through (False when the budget is 0) and
    # the Analyzer spends from the shared one.
    assert len(client.calls) == 1 and client.calls[0][1] is False
    assert f.stats.cached == 1 and f.stats.llm_calls == 0 and len(outbox.pending(10)) == 2


def test_failure_is_counted_and_nothing_is_queued():
    outbox = MemoryOutbox()
    f, _ = followup(FakeClient(fail=True), outbox)
    f.on_delivered(first_alert())
    f._pool.shutdown(wait=True)
    assert f.stats.failed == 1 and "TimeoutError" in f.stats.last_error and outbox.pending(10) == []


def test_only_first_alerts_are_analysed():
    client, outbox = FakeClient(), MemoryOutbox()
    f, _ = followup(client, outbox)
    f.on_delivered(first_alert().model_copy(update={"kind": AlertKind.SUMMARY}))
    f._pool.shutdown(wait=True)
    assert client.calls == []
