"""DeliveryLoop on an in-memory outbox and a recording notifier: order held, nothing lost, dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from cali.core.alerts import Alert, AlertKind, Severity
from cali.core.clock import FakeClock
from cali.core.ports import DeliveryReceipt, Health
from cali.core.records import Level
from cali.notify.delivery import DeliveryLoop
from cali.notify.errors import PermanentDeliveryError, RetryableDeliveryError

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def alert(n: int, kind: AlertKind = AlertKind.FIRST, incident: str = "svc|ERROR|g") -> Alert:
    return Alert(alert_id=f"a{n}", kind=kind, incident_key=incident, fingerprint="fp", service="svc",
                 level=Level.ERROR, severity=Severity.HIGH, message=f"boom {n}", template="boom <*>",
                 first_seen=T0, last_seen=T0, created_at=T0)


class MemoryOutbox:
    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}  # insertion-ordered: the delivery order

    def enqueue(self, alerts: Sequence[Alert]) -> None:
        for a in alerts:
            self.rows.setdefault(a.alert_id, {"alert": a, "status": "pending", "receipt": None, "reason": None})

    def pending(self, limit: int) -> list[Alert]:
        return [r["alert"] for r in self.rows.values() if r["status"] == "pending"][:limit]

    def mark_delivered(self, alert_id: str, receipt: DeliveryReceipt) -> None:
        self.rows[alert_id].update(status="delivered", receipt=receipt)

    def mark_failed(self, alert_id: str, reason: str) -> None:
        self.rows[alert_id].update(status="dead", reason=reason)

    def receipt(self, alert_id: str) -> DeliveryReceipt | None:
        row = self.rows.get(alert_id)
        return row["receipt"] if row and row["status"] == "delivered" else None

    def thread_parent_id(self, incident_key: str) -> str | None:
        firsts = [k for k, r in self.rows.items() if r["status"] == "delivered"
                  and r["alert"].kind is AlertKind.FIRST and r["alert"].incident_key == incident_key]
        return firsts[-1] if firsts else None

    def healthcheck(self) -> Health:
        return Health("memory-outbox", True, "")


class RecordingNotifier:
    """Plays a script of outcomes per call (an exception instance, or None for success)."""

    def __init__(self, script: Sequence[Exception | None] = (), permanent_for: set[str] | None = None) -> None:
        self.script = list(script)
        self.permanent_for = permanent_for or set()
        self.sent: list[tuple[str, str | None]] = []
        self.calls = 0

    def send(self, alert: Alert, thread_ts: str | None = None) -> DeliveryReceipt:
        self.calls += 1
        if alert.alert_id in self.permanent_for:
            raise PermanentDeliveryError(f"HTTP 400 invalid_blocks for {alert.alert_id}", status=400)
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.sent.append((alert.alert_id, thread_ts))
        return DeliveryReceipt(channel="C1", ts=f"100.{len(self.sent):06d}")

    def healthcheck(self) -> Health:
        return Health("recording", True, "")


def setup(n: int, notifier: RecordingNotifier, **kw: object) -> tuple[MemoryOutbox, DeliveryLoop, FakeClock]:
    outbox, clock = MemoryOutbox(), FakeClock()
    outbox.enqueue([alert(i) for i in range(n)])
    return outbox, DeliveryLoop(outbox, notifier, clock, **kw), clock  # type: ignore[arg-type]


def test_delivers_everything_in_order() -> None:
    notifier = RecordingNotifier()
    outbox, loop, _ = setup(5, notifier)
    assert loop.drain(100) == 5
    assert [a for a, _ in notifier.sent] == ["a0", "a1", "a2", "a3", "a4"]
    assert outbox.pending(10) == []


def test_retryable_failure_stops_the_drain_and_keeps_the_rest_in_order() -> None:
    down = RetryableDeliveryError("HTTP 503 after 4 retries", status=503)
    notifier = RecordingNotifier(script=[None, None, down, down])
    outbox, loop, clock = setup(5, notifier, pause_after_failure=5.0)

    assert loop.drain(100) == 2
    assert [a.alert_id for a in outbox.pending(10)] == ["a2", "a3", "a4"]
    assert loop.stats.retryable_failures == 1 and "503" in (loop.stats.last_error or "")

    assert loop.drain(100) == 0 and notifier.calls == 3  # backing off: no call at all
    clock.advance(5)
    assert loop.drain(100) == 0  # the second scripted failure
    clock.advance(5)
    assert loop.drain(100) == 3
    assert [a for a, _ in notifier.sent] == ["a0", "a1", "a2", "a3", "a4"]  # once each, in order
    assert outbox.pending(10) == []


def test_retry_after_sets_the_pause() -> None:
    limited = RetryableDeliveryError("HTTP 429", status=429, retry_after=60.0)
    notifier = RecordingNotifier(script=[limited])
    _, loop, clock = setup(1, notifier, pause_after_failure=1.0)
    assert loop.drain() == 0
    clock.advance(59)
    assert not loop.ready() and loop.drain() == 0
    clock.advance(1)
    assert loop.drain() == 1


def test_unknown_exception_is_treated_as_retryable_nothing_lost() -> None:
    notifier = RecordingNotifier(script=[RuntimeError("socket exploded")])
    outbox, loop, clock = setup(2, notifier, pause_after_failure=0.0)
    assert loop.drain() == 0
    assert [a.alert_id for a in outbox.pending(10)] == ["a0", "a1"]
    assert loop.drain() == 2


def test_permanent_failure_is_dead_lettered_counted_and_skipped() -> None:
    notifier = RecordingNotifier(permanent_for={"a1"})
    outbox, loop, _ = setup(3, notifier)
    assert loop.drain(100) == 2
    assert [a for a, _ in notifier.sent] == ["a0", "a2"]
    assert outbox.rows["a1"]["status"] == "dead" and "invalid_blocks" in outbox.rows["a1"]["reason"]
    assert loop.stats.dead == 1 and loop.stats.delivered == 2
    assert loop.drain(100) == 0 and notifier.calls == 3  # never retried


def test_max_items_bounds_one_drain() -> None:
    notifier = RecordingNotifier()
    outbox, loop, _ = setup(7, notifier, batch_size=2)
    assert loop.drain(3) == 3
    assert [a.alert_id for a in outbox.pending(10)] == ["a3", "a4", "a5", "a6"]
    assert loop.drain(100) == 4


def test_enqueue_twice_delivers_once() -> None:
    notifier = RecordingNotifier()
    outbox, loop, _ = setup(2, notifier)
    outbox.enqueue([alert(0), alert(1)])
    loop.drain()
    outbox.enqueue([alert(0)])  # a replayed alert after delivery
    assert loop.drain() == 0
    assert [a for a, _ in notifier.sent] == ["a0", "a1"]


def test_summary_is_sent_in_the_thread_of_its_first_alert() -> None:
    notifier = RecordingNotifier()
    outbox, clock = MemoryOutbox(), FakeClock()
    loop = DeliveryLoop(outbox, notifier, clock)  # type: ignore[arg-type]
    outbox.enqueue([alert(1, incident="A"), alert(2, incident="B"),
                    alert(3, AlertKind.SUMMARY, incident="A"), alert(4, AlertKind.SUMMARY, incident="C")])
    assert loop.drain() == 4
    assert notifier.sent == [("a1", None), ("a2", None), ("a3", "100.000001"), ("a4", None)]
