"""`cali demo --duration --seed` end to end, with invalid records injected onto the stream."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cali.core.archive import decode_jsonl_gz
from cali.stack import StackConfig, boto_client, down
from tests.integration.conftest import free_port, stack_missing
from tests.support import needs

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]

INVALID = {
    "bad_json": b'{"level": "ERROR", "service": "x", "message": \n',
    "bad_utf8": b'{"level": "ERROR", "service": "x", "message": "\xff\xfe"}\n',
    "not_an_object": b'["ERROR", "x"]\n',
    "schema": b'{"time": "2026-11-26T12:00:00Z", "level": "LOUD", "service": "x", "message": "m"}\n',
    "oversized": b'{"level": "ERROR", "service": "x", "message": "' + b"y" * 300_000 + b'"}\n',
}


def _wait_stream(kinesis, name, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError("the demo's stream never became active")


def _objects(s3, bucket, prefix):
    rows = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rows.extend(decode_jsonl_gz(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
    return rows


def test_demo_counts_match_archive_dlq_and_webhook(tmp_path):
    reason = stack_missing()
    if reason:
        needs.missing(reason)
    from cali.notify.local_receiver import LocalSlack

    ports = {"kinesis": free_port(), "aws": free_port(), "slack": free_port(), "dashboard": free_port(),
             "serve": free_port()}
    state_dir = tmp_path / "demo"
    stack = StackConfig(state_dir=state_dir / "stack", kinesis_port=ports["kinesis"], aws_port=ports["aws"])
    with LocalSlack(port=0) as slack:
        env = {**os.environ, "SLACK_WEBHOOK_URL": slack.url, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
               "RAY_USAGE_STATS_ENABLED": "0"}
        cmd = [sys.executable, "-m", "cali", "demo", "--duration", "40", "--seed", "11", "--quiet", "--keep-stack",
               "--rate", "80", "--incident-every", "8", "--state-dir", str(state_dir),
               "--kinesis-port", str(ports["kinesis"]), "--aws-port", str(ports["aws"]),
               "--slack-port", str(ports["slack"]), "--dashboard-port", str(ports["dashboard"]),
               "--serve-port", str(ports["serve"])]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            kinesis = boto_client("kinesis", stack.kinesis_endpoint, stack.region)
            _wait_stream(kinesis, stack.stream)
            for i, data in enumerate(INVALID.values()):
                kinesis.put_record(StreamName=stack.stream, Data=data, PartitionKey=f"bad-{i}")
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err[-3000:]
            summary = json.loads(out.strip().splitlines()[-1])

            s3 = boto_client("s3", stack.aws_endpoint, stack.region)
            raw = _objects(s3, stack.bucket, "raw/")
            dlq = _objects(s3, stack.bucket, "dlq/")
        finally:
            if proc.poll() is None:
                proc.kill()
            down(stack)
        received = list(slack.received)

    assert summary["generated"] > 1000
    assert summary["shipped"] == summary["generated"]
    assert summary["consumed"] == summary["shipped"] + len(INVALID)
    assert summary["archived"] == len(raw) == len({r["event_id"] for r in raw})
    assert summary["archived"] + summary["dlq"] == summary["consumed"]
    assert summary["dlq"] == len(dlq) == len(INVALID)
    assert sorted(d["reason"] for d in dlq) == sorted(INVALID)
    by_reason = {d["reason"]: base64.b64decode(d["data_b64"]) for d in dlq}
    for reason_, data in INVALID.items():
        assert by_reason[reason_] == data.rstrip(b"\n") or by_reason[reason_] == data
    assert summary["alerts_sent"] >= 8  # scripted incidents every 8 s for 40 s, plus background warnings
    analyses = [m for m in received if m["text"].startswith("Analysis of ")]
    alerts = [m for m in received if not m["text"].startswith("Analysis of ")]
    assert summary["alerts_sent"] == len(alerts)
    assert summary["analyses_posted"] == len(analyses) > 0
    assert summary["alerts_suppressed"] > 0
    assert all(m.get("blocks") and m.get("text") for m in received)
    # every analysis follows the alert it names
    for a in analyses:
        named = a["text"].removeprefix("Analysis of ").split(": ", 1)[0]
        first = next(i for i, m in enumerate(received) if m["text"].startswith(named))
        assert first < received.index(a)
