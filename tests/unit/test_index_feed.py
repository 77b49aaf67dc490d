"""The index feeds: the hot path only queues; the feed's thread filters, writes, retries, drops and dead-letters."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from cali.core.alerts import Alert, AlertKind, Severity
from cali.core.archive import decode_jsonl_gz
from cali.core.clock import FakeClock
from cali.core.records import Level
from cali.index.port import DocumentRejected, IndexUnavailable, WriteResult
from cali.service.index_feed import IncidentFeed, LogFeed
from tests.unit.fakes import FakeShard, MemoryArchive
from tests.unit.test_shard_consumer import consumer, drain, line

SHARD = "shardId-000000000000"


class FakeIndex:
    """Records what it is asked to write; fails while `down`, refuses documents whose message says so."""

    def __init__(self) -> None:
        self.docs: list[dict] = []
        self.alerts: list[Alert] = []
        self.down = 0  # how many calls fail before it comes back
        self.calls = 0
        self.written = threading.Event()

    def write_logs(self, docs):
        self.calls += 1
        if self.down:
            self.down -= 1
            raise IndexUnavailable("connection refused")
        result = WriteResult()
        for i, d in enumerate(docs):
            if "refuse" in d["message"]:
                result.rejected.append((i, "mapper_parsing_exception: refused for the test"))
            else:
                self.docs.append(d)
                result.written += 1
        self.written.set()
        return result

    def add_alert(self, alert):
        if alert.message == "refuse":
            raise DocumentRejected("400 mapper_parsing_exception")
        self.alerts.append(alert)

    def apply_retention(self, now):
        return 0


def rows(*levels: str) -> list[bytes]:
    import orjson

    return [orjson.dumps({"timestamp": "2026-11-26T12:00:00Z", "level": lv, "service": "api", "message": f"m{i} {lv}",
                          "event_id": f"{SHARD}:{100 + i}:0"}) for i, lv in enumerate(levels)]


def test_only_configured_levels_are_indexed_and_the_call_only_queues():
    ix = FakeIndex()
    feed = LogFeed(ix, levels=["WARN", "ERROR"], shard_id=SHARD, clock=FakeClock(), sleep=lambda s: None)
    feed(rows("DEBUG", "INFO", "WARN", "ERROR"))
    assert ix.calls == 0 and feed.stats.queued == 4  # nothing written on the caller's thread
    feed.start()
    assert feed.flush(5)
    feed.stop()
    assert [d["level"] for d in ix.docs] == ["WARN", "ERROR"] and feed.stats.indexed == 2


def test_a_down_index_is_retried_with_backoff_and_nothing_is_lost():
    ix, waits = FakeIndex(), []
    ix.down = 3
    feed = LogFeed(ix, levels=["ERROR"], shard_id=SHARD, clock=FakeClock(), sleep=waits.append)
    feed(rows("ERROR", "ERROR"))
    feed.start()
    assert feed.flush(5)
    feed.stop()
    assert len(ix.docs) == 2 and feed.stats.failures == 3 and feed.stats.last_error.startswith("IndexUnavailable")
    assert waits[1] > waits[0] * 0.9 and all(w > 0 for w in waits)


def test_past_the_bound_the_oldest_waiting_rows_are_dropped_and_counted():
    ix = FakeIndex()
    feed = LogFeed(ix, levels=["ERROR"], shard_id=SHARD, clock=FakeClock(), max_rows=1_000, sleep=lambda s: None)
    for _ in range(5):
        feed(rows(*["ERROR"] * 300))
    assert feed.stats.dropped == 500 and feed.stats.queued == 1_000
    feed.start()
    assert feed.flush(5)
    feed.stop()
    assert len(ix.docs) == 1_000


def test_refused_documents_go_to_the_dlq_with_the_index_reason():
    import orjson

    ix, dlq = FakeIndex(), MemoryArchive()
    clock = FakeClock()
    feed = LogFeed(ix, levels=["ERROR"], shard_id=SHARD, clock=clock, dead_letters=dlq, sleep=lambda s: None)
    bad = orjson.dumps({"timestamp": "2026-11-26T12:00:00Z", "level": "ERROR", "service": "api",
                        "message": "please refuse me", "event_id": f"{SHARD}:205:3"})
    feed(rows("ERROR") + [bad])
    feed.start()
    assert feed.flush(5)
    feed.stop()
    (key, body), = dlq.objects.items()
    assert key.startswith("dlq/dt=") and f"/{SHARD}.index-205-205.jsonl.gz" in key
    (letter,) = decode_jsonl_gz(body)
    assert letter["reason"] == "index_rejected" and "mapper_parsing_exception" in letter["error"]
    assert letter["sequence_number"] == "205" and letter["line"] == 3 and feed.stats.rejected == 1


def test_the_shard_consumer_hands_archived_rows_to_the_index_after_the_archive():
    got: list[list[bytes]] = []
    arch = MemoryArchive()

    def hook(batch):
        assert any(k.startswith("raw/") for k in arch.objects)  # only what is durable is indexed
        got.append(list(batch))

    c = consumer(FakeShard([line(0), line(1, "ERROR"), line(2)], closed=True), archive=arch)
    c.index = hook
    drain(c)
    assert sum(len(b) for b in got) == 3


def alert(n: int, message: str = "db down") -> Alert:
    t = datetime(2026, 11, 26, 12, tzinfo=UTC) + timedelta(seconds=n)
    return Alert(alert_id=f"k#e{n}#first", kind=AlertKind.FIRST, incident_key="api|ERROR|1", fingerprint="f",
                 service="api", level=Level.ERROR, severity=Severity.HIGH, message=message, template=message,
                 first_seen=t, last_seen=t, created_at=t)


def test_incident_feed_keeps_order_retries_and_skips_a_refused_alert():
    class Flaky(FakeIndex):
        fails = 2

        def add_alert(self, a):
            if self.fails:
                self.fails -= 1
                raise IndexUnavailable("503")
            super().add_alert(a)

    ix = Flaky()
    feed = IncidentFeed(ix, sleep=lambda s: None)
    for a in (alert(1), alert(2, "refuse"), alert(3)):
        feed(a)
    feed.start()
    assert feed.flush(5)
    feed.stop()
    assert [a.alert_id for a in ix.alerts] == ["k#e1#first", "k#e3#first"]
    assert feed.stats.rejected == 1 and feed.stats.failures == 2 and feed.stats.indexed == 2
