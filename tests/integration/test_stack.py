"""The local stack: up/status/down, idempotence, resources, and stopping only its own processes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cali.stack import down, status, up
from cali.stack.procs import is_ours_alive, read_pid

pytestmark = pytest.mark.integration


def test_stream_has_two_active_shards(stack, kinesis):
    summary = kinesis.describe()
    assert summary["StreamStatus"] == "ACTIVE"
    assert summary["OpenShardCount"] == 2
    assert len([s for s in kinesis.list_shards() if not s.is_closed]) == 2
    assert kinesis.healthcheck().ok


def test_bucket_tables_secret_firehose_exist(stack, aws_clients):
    aws_clients["s3"].head_bucket(Bucket=stack.bucket)
    tables = aws_clients["dynamodb"].list_tables()["TableNames"]
    assert {stack.checkpoint_table, stack.state_table, stack.outbox_table} <= set(tables)
    outbox = aws_clients["dynamodb"].describe_table(TableName=stack.outbox_table)["Table"]["KeySchema"]
    assert {(k["AttributeName"], k["KeyType"]) for k in outbox} == {("pk", "HASH"), ("seq", "RANGE")}
    secret = aws_clients["secretsmanager"].get_secret_value(SecretId=stack.secret_name)
    assert secret["SecretString"] == stack.webhook_url
    desc = aws_clients["firehose"].describe_delivery_stream(DeliveryStreamName=stack.delivery_stream)
    assert desc["DeliveryStreamDescription"]["DeliveryStreamName"] == stack.delivery_stream


def test_status_reports_both_services_healthy(stack):
    st = status(stack)
    assert set(st) == {"kinesalite", "moto"}
    for name, s in st.items():
        assert s["alive"] and s["healthy"], (name, s)
        assert s["endpoint"].startswith("http://127.0.0.1:")


@pytest.fixture
def own_stack(tmp_path, stack_config_factory):
    cfg = stack_config_factory(tmp_path / "own", shards=3, stream="own-stream")
    yield cfg
    down(cfg)


def test_up_is_idempotent_and_down_stops_only_its_own(stack, own_stack):
    first = up(own_stack)
    assert all(s["started"] for s in first["services"].values())
    assert first["resources"]["stream"]["open_shards"] == 3
    second = up(own_stack)
    assert not any(s["started"] for s in second["services"].values())
    assert {n: s["pid"] for n, s in first["services"].items()} == \
        {n: s["pid"] for n, s in second["services"].items()}
    assert not second["resources"]["stream"]["created"]
    assert not second["resources"]["bucket"]["created"]

    # A pid file naming a process that is not ours must not get it killed.
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        pids = {n: read_pid(own_stack.state_dir, n) for n in ("kinesalite", "moto")}
        result = down(own_stack)
        assert all(r["stopped"] for r in result.values())
        assert not any(is_ours_alive(info) for info in pids.values())
        assert not (own_stack.state_dir / "moto.pid").exists()
        # the session stack (another state dir) is untouched
        assert all(s["healthy"] for s in status(stack).values())

        fake = own_stack.state_dir / "moto.pid"
        fake.write_text(json.dumps({"pid": decoy.pid, "marker": "cali.stack.moto_single"}))
        down(own_stack)
        assert decoy.poll() is None, "down killed a process it did not start"
    finally:
        decoy.kill()
        decoy.wait()
    st = status(own_stack)
    assert not any(s["alive"] for s in st.values())
