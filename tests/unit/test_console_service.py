"""The console's service over an in-memory index: access, summaries, resolution into the knowledge base."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cali.console.service import ConsoleService, Resolution, check_access, split_values
from cali.core.alerts import Alert, AlertKind, Severity
from cali.core.clock import FakeClock
from cali.core.records import Level
from cali.index.sqlite_fts import SqliteIndex


@pytest.mark.parametrize(("token", "host", "auth", "cookie", "want"), [
    (None, "127.0.0.1", "", "", None),
    (None, "::1", "", "", None),
    (None, "10.0.0.5", "", "", 403),
    (None, "10.0.0.5", "Bearer anything", "", 403),  # no token configured: never open to the network
    ("s3cret", "127.0.0.1", "", "", 401),  # a configured token is asked of loopback clients too
    ("s3cret", "10.0.0.5", "Bearer s3cret", "", None),
    ("s3cret", "10.0.0.5", "bearer s3cret", "", None),
    ("s3cret", "10.0.0.5", "Bearer wrong", "", 401),
    ("s3cret", "10.0.0.5", "", "s3cret", None),
    ("s3cret", "10.0.0.5", "Basic s3cret", "", 401),
])
def test_access(token, host, auth, cookie, want):
    got = check_access(token, host, auth, cookie)
    assert (got[0] if got else None) == want


class Recorded:
    def __init__(self) -> None:
        self.entries: list[dict] = []

    def upsert(self, incidents):
        self.entries += incidents
        return len(incidents)


def first_alert() -> Alert:
    t = datetime(2026, 11, 26, 12, tzinfo=UTC)
    return Alert(alert_id="api|ERROR|1#s:1:0#first", kind=AlertKind.FIRST, incident_key="api|ERROR|1",
                 fingerprint="abcd", service="api", level=Level.ERROR, severity=Severity.HIGH,
                 message="payment gateway refused the card", template="payment gateway refused the card",
                 first_seen=t, last_seen=t, created_at=t)


def test_resolving_writes_a_resolved_knowledge_entry_then_marks_the_incident(tmp_path):
    ix, kb = SqliteIndex(tmp_path / "i.db"), Recorded()
    ix.add_alert(first_alert())
    svc = ConsoleService(ix, kb, lambda: {}, clock=FakeClock(datetime(2026, 11, 26, 13, tzinfo=UTC)),
                         categories=["payment-declined", "db-pool-exhausted"])
    with pytest.raises(ValueError, match="unknown category"):
        svc.resolve("api|ERROR|1", Resolution(note="gateway key rotated", category="nope"))
    doc = svc.resolve("api|ERROR|1", Resolution(note="gateway key rotated; put the new key in the secret",
                                                category="payment-declined"))
    (entry,) = kb.entries
    assert entry["source"] == "resolved" and entry["category"] == "payment-declined"
    assert entry["symptoms"][0] == "payment gateway refused the card" and entry["fingerprint"] == "abcd"
    assert "gateway key rotated" in entry["root_cause"]
    assert doc["status"] == "resolved" and doc["resolution"]["kb_id"] == entry["id"]
    assert svc.incidents(status="resolved")[0]["category"] == "payment-declined"
    with pytest.raises(KeyError):
        svc.resolve("none|ERROR|1", Resolution(note="x y z", category="payment-declined"))


def test_health_says_when_no_pipeline_runs_and_sums_the_shards():
    svc = ConsoleService(None, None, lambda: {"shards": [], "trackers": [], "alerter": None})  # type: ignore[arg-type]
    assert "no pipeline" in svc.health()["problems"][0]
    svc = ConsoleService(None, None, lambda: {"shards": [  # type: ignore[arg-type]
        {"records": 5, "dead": 1, "set_aside": 1, "millis_behind_latest": 30, "pending_bytes": 10},
        {"records": 7, "dead": 0, "millis_behind_latest": None, "pending_bytes": 0}], "alerter": {"delivered": 3}})
    h = svc.health()
    assert h["totals"] == {"records": 12, "dlq": 2, "pending_bytes": 10, "max_lag_ms": 30, "outbox_delivered": 3,
                           "outbox_dead": 0} and h["problems"] == []


def test_split_values_and_unknown_levels(tmp_path):
    assert split_values(" a, b ,,") == ("a", "b")
    svc = ConsoleService(SqliteIndex(tmp_path / "i.db"), None, lambda: {})
    with pytest.raises(ValueError, match="LOUD"):
        svc.logs(levels=("LOUD",))
