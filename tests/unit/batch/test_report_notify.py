"""The report document and page, the quality alert, and its delivery through the outbox."""

from __future__ import annotations

from datetime import UTC, datetime

from cali.batch.notify import enqueue_and_deliver, quality_alert
from cali.batch.report import build_report, render_html
from cali.core.clock import FakeClock
from cali.core.ports import DeliveryReceipt, Health
from tests.unit.fakes import MemoryCheckpoints

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


def quality(failed=("level is in the allowed set",), warn=()):
    checks = [{"check": name, "severity": "critical", "success": False, "unexpected_count": 3,
               "observed_value": None, "sample": ["LOUD"]} for name in failed]
    checks += [{"check": name, "severity": "warning", "success": False, "unexpected_count": 1,
                "observed_value": None, "sample": []} for name in warn]
    checks.append({"check": "event_id is unique", "severity": "critical", "success": True, "unexpected_count": 0,
                   "observed_value": None, "sample": []})
    return {"day": "2026-11-26", "success": not failed, "failures": len(failed), "warnings": len(warn),
            "records": 1000, "objects": 2, "dlq": 1, "dlq_ratio": 0.001, "checks": checks}


REINDEX = {"records": 1000, "alertable": 60, "clusters": 2,
           "per_service_hour": [{"service": "orders-api", "hour": "03", "level": "ERROR", "records": 40},
                                {"service": "orders-api", "hour": "03", "level": "FATAL", "records": 2},
                                {"service": "web-bff", "hour": "04", "level": "WARN", "records": 18}],
           "top_clusters": [{"key": "orders-api|ERROR|g1", "fingerprint": "ab", "service": "orders-api",
                             "level": "ERROR", "count": 42, "first_seen": "2026-11-26T03:00:00Z",
                             "last_seen": "2026-11-26T03:59:00Z", "title": "orders-api ERROR: <script>x</script>",
                             "samples": [], "knowledge": {"entry": "lrn-ab", "action": "added"}}],
           "knowledge": {"learned": 2, "added": ["lrn-ab"], "updated": ["lrn-cd"], "known": [], "removed": [],
                         "via": "kb.db"}}


def test_report_merges_the_steps_and_names_what_is_missing():
    report = build_report("2026-11-26", quality(), REINDEX, NOW)
    assert report["errors_per_service_per_hour"] == {"orders-api": {"03": 42}}
    assert report["warnings_per_service"] == {"web-bff": 18}
    assert report["learned"] == 2 and report["quality_failures"] == 1 and report["missing"] == []
    partial = build_report("2026-11-26", quality(), None, NOW)
    assert partial["missing"] == ["reindex job"] and partial["learned"] == 0


def test_html_escapes_log_text():
    page = render_html(build_report("2026-11-26", quality(), REINDEX, NOW))
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page
    assert "level is in the allowed set" in page and "lrn-ab" in page


def test_a_day_check_says_what_it_observed():
    q = quality(failed=())
    q["checks"].append({"check": "the day's DLQ ratio is below the threshold", "severity": "critical",
                        "success": False, "unexpected_count": 1, "observed_value": None, "sample": [0.2],
                        "suite": "cali_archive_day"})
    assert quality_alert(q, NOW).stack_head == ["the day's DLQ ratio is below the threshold: observed 0.2"]


def test_alert_only_for_critical_failures_and_its_id_follows_what_failed():
    assert quality_alert(quality(failed=(), warn=("service is a known one",)), NOW) is None
    a = quality_alert(quality(), NOW)
    assert a.service == "cali-batch" and a.stack_head == ["level is in the allowed set: 3 record(s)"]
    assert quality_alert(quality(), NOW).alert_id == a.alert_id
    assert quality_alert(quality(failed=("event_id is present",)), NOW).alert_id != a.alert_id


class Outbox:
    def __init__(self):
        self.items, self.delivered, self.dead = {}, {}, {}

    def enqueue(self, alerts):
        for a in alerts:
            self.items.setdefault(a.alert_id, a)

    def pending(self, limit):
        return [a for k, a in self.items.items() if k not in self.delivered and k not in self.dead][:limit]

    def mark_delivered(self, alert_id, receipt):
        self.delivered[alert_id] = receipt

    def mark_failed(self, alert_id, reason):
        self.dead[alert_id] = reason

    def receipt(self, alert_id):
        return self.delivered.get(alert_id)

    def thread_parent_id(self, key):
        return None

    def healthcheck(self):
        return Health("o", True, "")


class Notifier:
    def __init__(self):
        self.sent = []

    def send(self, alert):
        self.sent.append(alert)
        return DeliveryReceipt()

    def healthcheck(self):
        return Health("n", True, "")


def test_delivered_here_when_no_alerter_holds_the_outbox_and_only_that_alert():
    outbox, notifier, leases = Outbox(), Notifier(), MemoryCheckpoints()
    other = quality_alert(quality(failed=("event_id is present",)), NOW)
    outbox.enqueue([other])  # someone else's pending alert: the Alerter's job, in its order
    alert = quality_alert(quality(), NOW)
    status = enqueue_and_deliver(alert, outbox, lambda: notifier, leases, "s", 20, FakeClock())
    assert status == "delivered" and [a.alert_id for a in notifier.sent] == [alert.alert_id]
    assert leases.get_lease("s", "~alerter").owner is None  # released at once
    again = enqueue_and_deliver(alert, outbox, lambda: notifier, leases, "s", 20, FakeClock())
    assert again == "delivered before" and len(notifier.sent) == 1


def test_left_to_the_alerter_when_it_holds_the_lease():
    outbox, notifier, leases = Outbox(), Notifier(), MemoryCheckpoints()
    held = leases.get_lease("s", "~alerter")
    leases.take_lease("s", "~alerter", "pipeline-1", held.counter)
    alert = quality_alert(quality(), NOW)
    assert enqueue_and_deliver(alert, outbox, lambda: notifier, leases, "s", 20, FakeClock()) == "queued"
    assert notifier.sent == [] and [a.alert_id for a in outbox.pending(10)] == [alert.alert_id]
