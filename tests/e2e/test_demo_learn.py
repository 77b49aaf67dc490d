"""`cali demo --learn`: the demo ends with the day's batch (checks, the reindex Ray Job, the report), and its
summary line says how many knowledge entries were learned and how many quality checks failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cali.stack import StackConfig, boto_client, down
from tests.integration.conftest import free_port, stack_missing
from tests.support import needs

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(900)
def test_demo_learn_reports_learned_and_quality_failures(tmp_path):
    reason = stack_missing()
    if reason:
        needs.missing(reason)
    needs.module("great_expectations", "great-expectations is not installed: pip install -e .")
    from cali.notify.local_receiver import LocalSlack

    ports = {"kinesis": free_port(), "aws": free_port(), "dashboard": free_port(), "serve": free_port()}
    state_dir = tmp_path / "demo"
    stack = StackConfig(state_dir=state_dir / "stack", kinesis_port=ports["kinesis"], aws_port=ports["aws"])
    with LocalSlack(port=0) as slack:
        env = {**os.environ, "SLACK_WEBHOOK_URL": slack.url, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
               "RAY_USAGE_STATS_ENABLED": "0", "GX_ANALYTICS_ENABLED": "false"}
        cmd = [sys.executable, "-m", "cali", "demo", "--duration", "30", "--seed", "5", "--quiet", "--keep-stack",
               "--learn", "--rate", "60", "--incident-every", "6", "--state-dir", str(state_dir),
               "--kinesis-port", str(ports["kinesis"]), "--aws-port", str(ports["aws"]),
               "--dashboard-port", str(ports["dashboard"]), "--serve-port", str(ports["serve"])]
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=840)
            assert proc.returncode == 0, proc.stderr[-4000:] + proc.stdout[-2000:]
            summary = json.loads(proc.stdout.strip().splitlines()[-1])
            s3 = boto_client("s3", stack.aws_endpoint, stack.region)
            day = datetime.now(UTC).date().isoformat()
            key = f"reports/dt={day}/report.json"
            report = json.loads(s3.get_object(Bucket=stack.bucket, Key=key)["Body"].read())
        finally:
            down(stack)
    assert summary["learned"] >= 1 and summary["learned"] == report["learned"]
    failed = [c for c in report["quality"]["checks"] if not c["success"] and c["severity"] == "critical"]
    assert summary["quality_failures"] == len(failed) == report["quality_failures"]
    assert report["quality"]["records"] >= summary["archived"] > 0
    assert report["clusters"] >= 1 and report["top_clusters"][0]["knowledge"]["entry"].startswith(("lrn-", "inc-"))
    # the KB the Serve app owned during the demo holds what was learned (the app has stopped: the file is free)
    from cali.embed.minilm import MiniLMEmbedder
    from cali.vector.milvus import MilvusStore

    with MilvusStore(MiniLMEmbedder(), uri=str(state_dir / "kb.db")) as store:
        learned = store.client.query(store.collection, filter='source == "learned"', output_fields=["id"])
    assert {r["id"] for r in learned} >= set(report["knowledge"]["added"])
