"""`cali demo --learn` end to end, once, as a user runs it (no Ray variables from the Makefile or the test
runner, the demo's own Slack receiver), with invalid records injected onto the stream. While it runs,
every listening socket of its process tree (Ray, the Serve apps, kinesalite, moto, the Slack receiver) is
checked: loopback only, or credentials demanded. After it: the summary against the archive, the DLQ and
the webhook; the day's batch (checks, the reindex Ray Job, the report) against what it learned; and no
process of the demo left behind.

One run serves the three checks: each demo takes a minute or two of the suite's budget."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cali.core.archive import decode_jsonl_gz
from cali.serve.command import load_config
from cali.stack import StackConfig, boto_client, down
from tests.integration.conftest import free_port, stack_missing
from tests.support import needs
from tests.support.listeners import listeners, process_tree, verdict
from tests.support.survivors import tagged_processes

# The run is charged to the first test's setup: stack, Ray, the Serve apps (MiniLM loads), 40 s of traffic,
# the drain, the day's batch and the shutdown take about three minutes on two cores, more on a busy one.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]
ROOT = Path(__file__).resolve().parents[2]

INVALID = {
    "bad_json": b'{"level": "ERROR", "service": "x", "message": \n',
    "bad_utf8": b'{"level": "ERROR", "service": "x", "message": "\xff\xfe"}\n',
    "not_an_object": b'["ERROR", "x"]\n',
    "schema": b'{"time": "2026-11-26T12:00:00Z", "level": "LOUD", "service": "x", "message": "m"}\n',
    "oversized": b'{"level": "ERROR", "service": "x", "message": "' + b"y" * 300_000 + b'"}\n',
}
APP = load_config()
DEPLOYMENTS = sorted(APP["overrides"])
# What the demo must be running before the socket snapshot means anything: one process per Ray part and
# Serve deployment, and the pipeline's actors (started last, after the Serve app is deployed).
EXPECTED = ["gcs_server", "raylet", "ray::ShardReader", "ray::IncidentTracker", "ray::Alerter",
            *[f"ray::ServeReplica:{APP['name']}:{d}" for d in DEPLOYMENTS]]


def _wait_stream(kinesis, name, proc, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the demo exited early ({proc.returncode})")
        try:
            if kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                return
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError("the demo's stream never became active")


def _names(pids: list[int]) -> str:
    import psutil

    out = []
    for pid in pids:
        try:
            out.append(" ".join(psutil.Process(pid).cmdline()))
        except psutil.Error:
            continue
    return "\n".join(out)


def _wait_for_everything(proc: subprocess.Popen, timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    missing = EXPECTED
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the demo exited early ({proc.returncode})")
        pids = [p.pid for p in process_tree(proc.pid)]
        missing = [e for e in EXPECTED if e not in _names(pids)]
        if not missing:
            return pids
        time.sleep(1)
    raise AssertionError(f"the demo never ran {missing}")


def _objects(s3, bucket, prefix):
    rows = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rows.extend(decode_jsonl_gz(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
    return rows


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    reason = stack_missing()
    if reason:
        needs.missing(reason)
    needs.module("great_expectations", "great-expectations is not installed: pip install -e .")
    tmp = tmp_path_factory.mktemp("demo")
    ports = {"kinesis": free_port(), "aws": free_port(), "slack": free_port(), "dashboard": free_port(),
             "serve": free_port()}
    state_dir = tmp / "demo"
    stack = StackConfig(state_dir=state_dir / "stack", kinesis_port=ports["kinesis"], aws_port=ports["aws"])
    tag = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_AUTH_MODE", "RAY_ADDRESS", "SLACK_WEBHOOK_URL")}
    env.update({"RAY_USAGE_STATS_ENABLED": "0", "GX_ANALYTICS_ENABLED": "false", "CALI_TEST_TAG": tag})
    cmd = [sys.executable, "-m", "cali", "demo", "--duration", "40", "--seed", "11", "--quiet", "--keep-stack",
           "--learn", "--rate", "80", "--incident-every", "8", "--state-dir", str(state_dir),
           "--kinesis-port", str(ports["kinesis"]), "--aws-port", str(ports["aws"]),
           "--slack-port", str(ports["slack"]), "--dashboard-port", str(ports["dashboard"]),
           "--serve-port", str(ports["serve"])]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        kinesis = boto_client("kinesis", stack.kinesis_endpoint, stack.region)
        _wait_stream(kinesis, stack.stream, proc)
        for i, data in enumerate(INVALID.values()):
            kinesis.put_record(StreamName=stack.stream, Data=data, PartitionKey=f"bad-{i}")
        found = listeners(_wait_for_everything(proc, timeout_s=300))
        verdicts = [(s, *verdict(s)) for s in found]
        try:
            out, err = proc.communicate(timeout=840)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError("the demo did not finish in 840 s:\n" + err[-4000:] + out[-2000:]) from None
        assert proc.returncode == 0, err[-4000:] + out[-2000:]
        s3 = boto_client("s3", stack.aws_endpoint, stack.region)
        day = datetime.now(UTC).date().isoformat()
        report = json.loads(s3.get_object(Bucket=stack.bucket, Key=f"reports/dt={day}/report.json")["Body"].read())
        raw, dlq = _objects(s3, stack.bucket, "raw/"), _objects(s3, stack.bucket, "dlq/")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        down(stack)
    received = [json.loads(line) for line in (state_dir / "slack.jsonl").read_text().splitlines()]
    return {"summary": json.loads(out.strip().splitlines()[-1]), "raw": raw, "dlq": dlq, "received": received,
            "report": report, "ports": ports, "found": found, "verdicts": verdicts, "state_dir": state_dir,
            "survivors": tagged_processes(tag)}


def test_every_listener_of_the_demo_is_loopback_or_authenticated(demo):
    for s, ok, why in demo["verdicts"]:
        print(f"{'ok  ' if ok else 'OPEN'} {s}: {why}")
    open_ = [f"{s}: {why}" for s, ok, why in demo["verdicts"] if not ok]
    assert not open_, "listening beyond loopback without authentication:\n" + "\n".join(open_)
    # The snapshot covered the demo's own servers, each on its port on loopback.
    bound = {s.port: s for s in demo["found"]}
    for name, port in demo["ports"].items():
        assert port in bound and bound[port].loopback, f"{name} port {port} not seen on loopback: {bound.get(port)}"
    # Every Serve replica's sockets were in the snapshot: Ray Serve 2.60 binds each replica's
    # inter-deployment gRPC server to [::], the listener this test exists for.
    processes = {s.process for s in demo["found"]}
    assert all(f"ray::ServeReplica:{APP['name']}:{d}" in processes for d in DEPLOYMENTS), processes


def test_demo_counts_match_archive_dlq_and_webhook(demo):
    summary, raw, dlq, received = demo["summary"], demo["raw"], demo["dlq"], demo["received"]
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
    # The learn step's data-quality alert, if a check failed, goes to the same webhook after the run.
    quality = [m for m in received if "Data quality failed for the archive" in m["text"]]
    assert len(quality) == (1 if summary["quality_failures"] else 0)
    analyses = [m for m in received if m["text"].startswith("Analysis of ")]
    alerts = [m for m in received if not m["text"].startswith("Analysis of ") and m not in quality]
    assert summary["alerts_sent"] == len(alerts)
    assert summary["analyses_posted"] == len(analyses) > 0
    assert summary["alerts_suppressed"] > 0
    assert all(m.get("blocks") and m.get("text") for m in received)
    # every analysis follows the alert it names
    for a in analyses:
        named = a["text"].removeprefix("Analysis of ").split(": ", 1)[0]
        first = next(i for i, m in enumerate(received) if m["text"].startswith(named))
        assert first < received.index(a)


def test_demo_learn_reports_learned_and_quality_failures(demo):
    summary, report = demo["summary"], demo["report"]
    assert summary["learned"] >= 1 and summary["learned"] == report["learned"]
    failed = [c for c in report["quality"]["checks"] if not c["success"] and c["severity"] == "critical"]
    assert summary["quality_failures"] == len(failed) == report["quality_failures"]
    assert report["quality"]["records"] >= summary["archived"] > 0
    assert report["clusters"] >= 1 and report["top_clusters"][0]["knowledge"]["entry"].startswith(("lrn-", "inc-"))
    # the KB the Serve app owned during the demo holds what was learned (the app has stopped: the file is free)
    from cali.embed.minilm import MiniLMEmbedder
    from cali.vector.milvus import MilvusStore

    with MilvusStore(MiniLMEmbedder(), uri=str(demo["state_dir"] / "kb.db")) as store:
        learned = store.client.query(store.collection, filter='source == "learned"', output_fields=["id"])
    assert {r["id"] for r in learned} >= set(report["knowledge"]["added"])


def test_no_process_of_the_demo_survives_it(demo):
    assert not demo["survivors"], f"processes of the demo survived it: {demo['survivors']}"
