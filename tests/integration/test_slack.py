"""SlackNotifier + SQLite outbox + DeliveryLoop against the local Slack receiver over loopback."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from cali.core.alerts import Alert, AlertKind, Severity
from cali.core.clock import SystemClock
from cali.core.records import Level
from cali.notify.delivery import DeliveryLoop
from cali.notify.errors import PermanentDeliveryError, RetryableDeliveryError
from cali.notify.local_receiver import WEBHOOK_PATH, LocalSlack
from cali.notify.slack import SlackNotifier
from cali.notify.slack_retry import RetryPolicy
from cali.state.sqlite_outbox import SqliteOutbox

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TOKEN = "xoxb-local-test-token-0000"
FAST = RetryPolicy(max_retries=4, base_delay=0.01, max_delay=0.05, timeout=0.5, rate_limit_jitter=0.0)


def alert(n: int, kind: AlertKind = AlertKind.FIRST, incident: str = "checkout|ERROR|g1") -> Alert:
    return Alert(alert_id=f"alert-{n}", kind=kind, incident_key=incident, fingerprint="fp1", service="checkout",
                 level=Level.ERROR, severity=Severity.HIGH, message=f"payment failed #{n}",
                 template="payment failed #<*>", stack_head=["at Pay.charge(Pay.java:42)"], count=1,
                 suppressed=57 if kind is AlertKind.SUMMARY else 0, first_seen=T0,
                 last_seen=T0 + timedelta(minutes=4), created_at=T0)


@pytest.fixture
def slack(tmp_path: Path):
    receiver = LocalSlack(port=0, log_path=tmp_path / "slack.jsonl").start()
    yield receiver
    receiver.stop()


class Sleeps:
    """Records the waits the retry handlers ask for; sleeps only a token amount."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def drain_until_empty(loop: DeliveryLoop, outbox: SqliteOutbox, rounds: int = 20) -> None:
    for _ in range(rounds):
        loop.drain(100)
        if not outbox.pending(1):
            return
    raise AssertionError(f"outbox still has pending alerts after {rounds} drains: {outbox.counts()}")


def test_webhook_faults_then_every_alert_once_in_order(slack: LocalSlack, tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sleeps = Sleeps()
    notifier = SlackNotifier(webhook_url=SecretStr(slack.url), policy=FAST, sleep=sleeps)
    outbox = SqliteOutbox(tmp_path / "outbox.sqlite")
    loop = DeliveryLoop(outbox, notifier, SystemClock(), pause_after_failure=0.0)
    outbox.enqueue([alert(i) for i in range(5)])
    slack.script([("status", 500), ("status", 429, {"Retry-After": "1"}), ("timeout", 2.0), ("status", 200)])

    drain_until_empty(loop, outbox)

    texts = [m["text"] for m in slack.received]
    assert [t.split("#")[1] for t in texts] == ["0", "1", "2", "3", "4"]
    assert len(slack.faults_served) == 4
    assert 1.0 in sleeps.waits  # Retry-After honoured (jitter 0 in this policy)
    assert outbox.counts() == {"pending": 0, "delivered": 5, "dead": 0}
    assert len((tmp_path / "slack.jsonl").read_text().splitlines()) == 5
    assert slack.url not in caplog.text and WEBHOOK_PATH not in caplog.text
    assert "Going to retry the same request: POST <redacted>" in caplog.text  # slack_sdk logged it, scrubbed


def test_slack_down_longer_than_the_retries_keeps_order_and_delivers_later(slack: LocalSlack,
                                                                           tmp_path: Path) -> None:
    notifier = SlackNotifier(webhook_url=SecretStr(slack.url), sleep=Sleeps(),
                             policy=RetryPolicy(max_retries=2, base_delay=0.01, timeout=0.5))
    outbox = SqliteOutbox(tmp_path / "outbox.sqlite")
    loop = DeliveryLoop(outbox, notifier, SystemClock(), pause_after_failure=0.0)
    outbox.enqueue([alert(i) for i in range(3)])
    slack.script([("status", 200), ("status", 503), ("status", 502), ("status", 504)])  # 1 ok, then down

    assert loop.drain(100) == 1
    assert "HTTP 504 after 2 retries" in (loop.stats.last_error or "")
    assert [a.alert_id for a in outbox.pending(10)] == ["alert-1", "alert-2"]
    outbox.enqueue([alert(1), alert(3)])  # a replay and a new one, while Slack is down
    assert loop.drain(100) == 3
    assert [m["text"].split("#")[1] for m in slack.received] == ["0", "1", "2", "3"]


def test_permanent_4xx_is_dead_lettered_and_the_next_alert_goes_out(slack: LocalSlack, tmp_path: Path) -> None:
    notifier = SlackNotifier(webhook_url=SecretStr(slack.url), policy=FAST, sleep=Sleeps())
    outbox = SqliteOutbox(tmp_path / "outbox.sqlite")
    loop = DeliveryLoop(outbox, notifier, SystemClock(), pause_after_failure=0.0)
    outbox.enqueue([alert(0), alert(1)])
    slack.script([("status", 400, {}, "invalid_payload")])
    assert loop.drain(100) == 1
    [(dead, reason)] = outbox.dead_letters()
    assert dead.alert_id == "alert-0"
    assert "HTTP 400" in reason and "invalid_payload" in reason
    assert len(slack.faults_served) == 1  # a 400 is not retried


def test_webhook_url_never_appears_in_errors_or_logs(slack: LocalSlack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    notifier = SlackNotifier(webhook_url=SecretStr(slack.url), policy=FAST, sleep=Sleeps())
    slack.script([("status", 404, {}, "no_service")])
    with pytest.raises(PermanentDeliveryError) as permanent:
        notifier.send(alert(0))
    assert "HTTP 404" in str(permanent.value) and "no_service" in str(permanent.value)

    slack.script([("timeout", 1.0)] * 5)
    with pytest.raises(RetryableDeliveryError) as retryable:
        notifier.send(alert(1))
    assert "TimeoutError" in str(retryable.value) or "timed out" in str(retryable.value)

    dead_url = f"http://127.0.0.1:1{WEBHOOK_PATH}"  # nothing listens on port 1
    refused = SlackNotifier(webhook_url=SecretStr(dead_url), policy=FAST, sleep=Sleeps())
    with pytest.raises(RetryableDeliveryError) as unreachable:
        refused.send(alert(2))

    for exc in (permanent.value, retryable.value, unreachable.value):
        for text in (str(exc), repr(exc), repr(exc.__cause__), repr(exc.__context__)):
            assert WEBHOOK_PATH not in text and "localsecret" not in text
    assert "localsecret" not in caplog.text
    assert "SecretStr('**********')" in repr(notifier.__dict__["_webhook_url"])


def test_bot_mode_posts_and_threads_the_summary_under_the_first_alert(slack: LocalSlack, tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    notifier = SlackNotifier(bot_token=SecretStr(TOKEN), channel="C0ALERTS", api_url=slack.api_url,
                             policy=FAST, sleep=Sleeps())
    assert notifier.healthcheck().ok
    outbox = SqliteOutbox(tmp_path / "outbox.sqlite")
    loop = DeliveryLoop(outbox, notifier, SystemClock(), pause_after_failure=0.0)
    outbox.enqueue([alert(1, incident="A"), alert(2, incident="B"), alert(3, AlertKind.SUMMARY, incident="A")])
    slack.script([("status", 429, {"Retry-After": "0"}), ("status", 500)])

    drain_until_empty(loop, outbox)

    first, other, summary = slack.received
    assert first["thread_ts"] is None and other["thread_ts"] is None
    assert summary["thread_ts"] == first["ts"]
    assert "×57 more in 5 min" in summary["text"]
    assert outbox.receipt("alert-1").ts == first["ts"]
    assert outbox.receipt("alert-1").channel == "C0ALERTS"
    assert TOKEN not in caplog.text


def test_bot_mode_api_error_is_permanent_with_a_hint(slack: LocalSlack) -> None:
    notifier = SlackNotifier(bot_token=SecretStr(TOKEN), channel="C0ALERTS", api_url=slack.api_url,
                             policy=FAST, sleep=Sleeps())
    slack.script([("status", 200, {}, json.dumps({"ok": False, "error": "channel_not_found"}))])
    with pytest.raises(PermanentDeliveryError, match="channel_not_found.*invite"):
        notifier.send(alert(1))


def test_healthchecks(slack: LocalSlack) -> None:
    ok = SlackNotifier(webhook_url=SecretStr(slack.url)).healthcheck()
    assert ok.ok and "not posted" in ok.detail and WEBHOOK_PATH not in ok.detail
    assert slack.received == []  # the check did not post
    bad = SlackNotifier(webhook_url=SecretStr("http://hooks.slack.com/services/T/B/x")).healthcheck()
    assert not bad.ok and "https" in bad.detail and "/services/T/B/x" not in bad.detail
    bad_path = SlackNotifier(webhook_url=SecretStr("https://hooks.slack.com/hooks/xyz")).healthcheck()
    assert not bad_path.ok and "/services/" in bad_path.detail
    wrong_token = SlackNotifier(bot_token=SecretStr(TOKEN), channel="C1", api_url="http://127.0.0.1:1/api/")
    health = wrong_token.healthcheck()
    assert not health.ok and "unreachable" in health.detail and TOKEN not in health.detail


def test_analysis_follow_up_over_the_wire_is_escaped_once_and_pings_nobody(slack) -> None:
    """The whole path a follow-up takes (render, slack_sdk's WebClient, HTTP, the receiver's Block Kit
    check): the reader sees the log text exactly once, our date renders, and nobody is mentioned."""
    from cali.core.alerts import analysis_alert
    from tests.support.slack_view import check_block_kit, what_a_reader_sees

    tricky = "a < b && <@U123ABC> <!here> &lt;done&gt; <!date^1700000000^{date}|then>"
    parent = alert(1).model_copy(update={"message": tricky})
    analysis = {"probable_cause": f"cause: {tricky}", "category": "db-pool-exhausted", "confidence": 0.8,
                "remediation": [f"step: {tricky}"], "remediation_from": ["inc-0001"],
                "model_suggestions": [f"own: {tricky}"], "evidence": [tricky], "similar": [],
                "abstained": False, "mode": "llm"}
    bot = SlackNotifier(bot_token=SecretStr(TOKEN), channel="C0LOCAL", api_url=slack.api_url, policy=FAST)
    bot.send(analysis_alert(parent, analysis, T0), thread_ts="1.000001")
    (got,) = slack.messages()
    check_block_kit(got["blocks"])
    seen = what_a_reader_sees(got["blocks"])
    for prefix in ("cause: ", "step: ", "own: "):
        assert prefix + tricky in seen.text
    assert seen.mentions == [] and seen.links == []
    assert seen.dates == ["!date^1772366400^{date_short_pretty} {time}|2026-03-01 12:00:00 UTC"]
    raw = json.dumps(got["blocks"], ensure_ascii=False)
    assert "a &lt; b &amp;&amp; &lt;@U123ABC&gt;" in raw and "a &amp;lt; b" not in raw  # escaped once, not twice
