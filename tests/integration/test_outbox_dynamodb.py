"""DynamoDBOutbox against a moto server on a free port: idempotent enqueue, order, marks, threads."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cali.core.alerts import Alert, AlertKind, Severity
from cali.core.ports import DeliveryReceipt
from cali.core.records import Level
from cali.stack.procs import free_port
from cali.state.dynamodb_outbox import DynamoDBOutbox, create_outbox_table
from tests.support import needs

pytestmark = pytest.mark.integration
boto3 = needs.module("boto3", "boto3 is not installed")

MOTO = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "moto_server"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)




@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    if not MOTO.exists():
        needs.missing(f"moto_server not found at {MOTO}: pip install 'moto[server]' in the venv")
    port = free_port()
    proc = subprocess.Popen([str(MOTO), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto server did not answer on {url} (exit code {proc.poll()})")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def client(endpoint: str):  # noqa: ANN201
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(var, None)
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    create_outbox_table(ddb, "cali-outbox")
    return ddb


@pytest.fixture
def outbox(client, request: pytest.FixtureRequest) -> DynamoDBOutbox:  # noqa: ANN001
    # One table per test keeps tests independent on the shared server.
    table = f"cali-outbox-{request.node.name[:60].replace('[', '-').replace(']', '')}"
    create_outbox_table(client, table)
    return DynamoDBOutbox(client, table)


def alert(n: int, kind: AlertKind = AlertKind.FIRST, incident: str = "svc|ERROR|g") -> Alert:
    return Alert(alert_id=f"a{n}", kind=kind, incident_key=incident, fingerprint="fp", service="svc",
                 level=Level.ERROR, severity=Severity.HIGH, message=f"boom {n} <&>", template="boom <*>",
                 stack_head=["at x.y(Z.java:1)"], first_seen=T0, last_seen=T0, created_at=T0,
                 trace_id="t1", host="h1", env="prod")


def ids(alerts: list[Alert]) -> list[str]:
    return [a.alert_id for a in alerts]


def test_healthcheck_on_the_contract_table(client) -> None:  # noqa: ANN001
    health = DynamoDBOutbox(client, "cali-outbox").healthcheck()
    assert health.ok, health.detail
    missing = DynamoDBOutbox(client, "no-such-table").healthcheck()
    assert not missing.ok and "ResourceNotFoundException" in missing.detail and "create-table" in missing.detail


def test_enqueue_is_idempotent_and_order_holds(outbox: DynamoDBOutbox) -> None:
    outbox.enqueue([alert(i) for i in range(5)])
    outbox.enqueue([alert(2), alert(0), alert(5)])  # replays are ignored (conditional write), a5 appended
    outbox.enqueue([])
    assert ids(outbox.pending(100)) == ["a0", "a1", "a2", "a3", "a4", "a5"]
    assert ids(outbox.pending(2)) == ["a0", "a1"]
    assert outbox.pending(1)[0] == alert(0)  # the Alert round-trips through its JSON unchanged


def test_mark_delivered_removes_from_pending_and_keeps_the_receipt(outbox: DynamoDBOutbox) -> None:
    outbox.enqueue([alert(1), alert(2)])
    outbox.mark_delivered("a1", DeliveryReceipt(channel="C1", ts="111.000001"))
    outbox.mark_delivered("a1", DeliveryReceipt(channel="C1", ts="999"))  # second mark changes nothing
    assert ids(outbox.pending(10)) == ["a2"]
    assert outbox.receipt("a1") == DeliveryReceipt(channel="C1", ts="111.000001")
    assert outbox.receipt("a2") is None
    outbox.enqueue([alert(1)])  # replay after delivery: not delivered twice
    assert ids(outbox.pending(10)) == ["a2"]


def test_webhook_receipt_without_ts_round_trips(outbox: DynamoDBOutbox) -> None:
    outbox.enqueue([alert(1)])
    outbox.mark_delivered("a1", DeliveryReceipt())
    assert outbox.receipt("a1") == DeliveryReceipt(channel=None, ts=None)


def test_mark_failed_dead_letters_with_the_reason(outbox: DynamoDBOutbox) -> None:
    outbox.enqueue([alert(1), alert(2)])
    outbox.mark_failed("a1", "HTTP 400 invalid_blocks")
    assert ids(outbox.pending(10)) == ["a2"]
    [(dead, reason)] = outbox.dead_letters()
    assert dead.alert_id == "a1" and reason == "HTTP 400 invalid_blocks"
    assert outbox.receipt("a1") is None


def test_thread_parent_is_the_latest_delivered_first_alert(outbox: DynamoDBOutbox) -> None:
    outbox.enqueue([alert(1, incident="A"), alert(2, AlertKind.SUMMARY, incident="A"), alert(3, incident="A")])
    assert outbox.thread_parent_id("A") is None
    outbox.mark_delivered("a1", DeliveryReceipt("C1", "1.1"))
    outbox.mark_delivered("a2", DeliveryReceipt("C1", "1.2"))
    assert outbox.thread_parent_id("A") == "a1"
    outbox.mark_delivered("a3", DeliveryReceipt("C1", "1.3"))
    assert outbox.thread_parent_id("A") == "a3"
    assert outbox.thread_parent_id("B") is None


def test_marking_an_unknown_alert_names_it(outbox: DynamoDBOutbox) -> None:
    with pytest.raises(Exception, match="never enqueued"):
        outbox.mark_delivered("nope", DeliveryReceipt())


def test_two_outboxes_on_one_table_share_order_and_identity(outbox: DynamoDBOutbox, client) -> None:  # noqa: ANN001
    other = DynamoDBOutbox(client, outbox.table)
    outbox.enqueue([alert(1)])
    other.enqueue([alert(1), alert(2)])
    outbox.enqueue([alert(3)])
    assert ids(other.pending(10)) == ["a1", "a2", "a3"]


def test_a_storm_is_written_in_chunks_and_a_replay_inside_one_is_still_ignored(outbox: DynamoDBOutbox) -> None:
    first = [alert(n) for n in range(30)]
    outbox.enqueue(first)
    # 130 alerts in three transactions' worth; 5 of them were queued before (a replayed batch)
    storm = [alert(n) for n in range(100, 160)] + first[10:15] + [alert(n) for n in range(160, 225)]
    outbox.enqueue(storm)
    expected = ids(first) + [a.alert_id for a in storm if a not in first[10:15]]
    assert ids(outbox.pending(500)) == expected  # each once, in enqueue order
