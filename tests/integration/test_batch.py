"""The daily batch on the local stack: moto S3 with a seeded day holding injected defects, a local Ray,
Milvus Lite, and the loopback Slack webhook."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import init_local_ray
from tests.support import needs

pytestmark = pytest.mark.integration

DAY = "2026-11-26"
RECORDS = 12_000
# Injected at these record positions: what the report must count, exactly.
DEFECTS = {101: "null service", 102: "no message", 103: "bad level", 104: "other day", 105: "duplicate event_id",
           106: "null service"}


def inject(state: dict):
    def defect(i, row):
        kind = DEFECTS.get(i)
        if kind is None:
            state["last_id"] = row["event_id"]
            return None
        row = dict(row)
        if kind == "null service":
            row["service"] = None
        elif kind == "no message":
            del row["message"]
        elif kind == "bad level":
            row["level"] = "LOUD"
        elif kind == "other day":
            row["timestamp"] = "2026-11-20T08:00:00Z"
        elif kind == "duplicate event_id":
            row["event_id"] = state["last_id"]
        return row
    return defect


@pytest.fixture(scope="module")
def day_env(stack, aws_clients, tmp_path_factory):
    needs.module("great_expectations", "great-expectations is not installed: pip install -e .")
    from cali.batch.synth import write_day
    from cali.config import local_settings
    from cali.notify.local_receiver import LocalSlack

    s3 = aws_clients["s3"]
    bucket = f"batch-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    written = write_day(lambda k, b: s3.put_object(Bucket=bucket, Key=k, Body=b), DAY, RECORDS, seed=11,
                        dlq_share=0.0005, defects=inject({}))
    tmp = tmp_path_factory.mktemp("batch")
    slack = LocalSlack().start()
    settings = local_settings(
        kinesis_endpoint=stack.kinesis_endpoint, aws_endpoint=stack.aws_endpoint, state_dir=tmp / "state",
        webhook_url=slack.url, stream=f"s-{uuid.uuid4().hex[:6]}", bucket=bucket,
        analysis={"kb_uri": str(tmp / "kb.db"), "app_name": f"absent-{uuid.uuid4().hex[:6]}"},
        batch={"embedder": "hashing", "dlq_ratio_max": 0.01})
    _load_curated(settings.analysis.kb_uri)
    ray = init_local_ray(f"batch-{uuid.uuid4().hex[:6]}")
    try:
        yield {"settings": settings, "s3": s3, "bucket": bucket, "slack": slack, "written": written, "tmp": tmp}
    finally:
        ray.shutdown()
        slack.stop()


def _load_curated(uri: str) -> None:
    from cali.analysis.commands import load_documents, taxonomy_path
    from cali.analysis.kb import load_taxonomy
    from cali.embed.hashing import HashingEmbedder
    from cali.stack.config import repo_root
    from cali.vector.milvus import MilvusStore

    tax = load_taxonomy(taxonomy_path())
    with MilvusStore(HashingEmbedder(), uri=uri) as store:
        store.upsert(load_documents(repo_root() / "knowledge" / "incidents", tax))


def kb_rows(uri: str) -> dict[str, dict]:
    from cali.embed.hashing import HashingEmbedder
    from cali.vector.milvus import MilvusStore

    with MilvusStore(HashingEmbedder(), uri=uri) as store:
        rows = [r for batch in store._all_rows() for r in batch]
    return {r["id"]: {k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items() if k != "sparse"}
            for r in rows}


@pytest.fixture(scope="module")
def first_run(day_env):
    from cali.batch.steps import run_day

    before = kb_rows(day_env["settings"].analysis.kb_uri)
    out = run_day(day_env["settings"], DAY)
    return out, before


def report(day_env, name="report.json"):
    body = day_env["s3"].get_object(Bucket=day_env["bucket"], Key=f"reports/dt={DAY}/{name}")["Body"].read()
    return json.loads(body) if name.endswith(".json") else body.decode()


def test_the_report_counts_exactly_the_injected_defects(day_env, first_run):
    out, _ = first_run
    checks = {c["check"]: c for c in report(day_env)["quality"]["checks"]}
    assert checks["service is present"]["unexpected_count"] == 2
    assert checks["message is present"]["unexpected_count"] == 1
    assert checks["level is in the allowed set"]["unexpected_count"] == 1
    assert checks["timestamp falls inside the partition's date"]["unexpected_count"] == 1
    assert checks["event_id is unique"]["unexpected_count"] == 2
    failed = sorted(c["check"] for c in checks.values() if not c["success"])
    assert failed == ["event_id is unique", "level is in the allowed set", "message is present",
                      "service is present", "timestamp falls inside the partition's date"]
    assert out["quality_failures"] == 5 and report(day_env)["quality"]["records"] == RECORDS
    assert "<h1>CALI daily report, 2026-11-26</h1>" in report(day_env, "report.html")


def test_one_slack_message_for_the_failed_day(day_env, first_run):
    messages = day_env["slack"].messages()
    assert len(messages) == 1
    text = json.dumps(messages[0])
    assert "Data quality failed for the archive of 2026-11-26" in text and "event_id is unique" in text
    from cali.state.sqlite_outbox import SqliteOutbox

    counts = SqliteOutbox(Path(day_env["settings"].state.sqlite_dir) / "outbox.db").counts()
    assert counts["delivered"] == 1 and counts["pending"] == 0


def test_the_report_has_hours_top_clusters_and_what_was_learned(day_env, first_run):
    doc = report(day_env)
    assert doc["records"] == RECORDS and doc["clusters"] >= 5
    assert sum(sum(h.values()) for h in doc["errors_per_service_per_hour"].values()) > 0
    top = doc["top_clusters"]
    assert top[0]["count"] >= top[-1]["count"] and top[0]["knowledge"]["action"] in ("added", "updated", "known")
    assert doc["learned"] == len(doc["knowledge"]["added"]) + len(doc["knowledge"]["updated"]) > 0


def test_kb_search_finds_the_learned_entry_first(day_env, first_run):
    from typer.testing import CliRunner

    from cali.cli import app

    doc = report(day_env)
    cluster = next(c for c in doc["top_clusters"] if (c.get("knowledge") or {}).get("action") == "added")
    # a new occurrence: the same failure, other ids and numbers
    text = cluster["samples"][0]
    occurrence = "".join(str((int(ch) + 3) % 10) if ch.isdigit() else ch for ch in text)
    result = CliRunner().invoke(app, ["kb", "search", occurrence, "--db", day_env["settings"].analysis.kb_uri,
                                      "--embedder", "hashing", "--json", "-k", "5"])
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    # The learned entry is the best learned hit. A curated entry on the same failure of similar relevance
    # may rank ahead of it (retrieval.rank_by_source): an engineer's fix beats a day's statistics.
    learned = [h for h in hits if h["source"] == "learned"]
    assert learned and learned[0]["id"] == cluster["knowledge"]["entry"], hits
    assert hits.index(learned[0]) <= 2, hits
    assert learned[0]["occurrences"] >= cluster["count"]


def test_a_second_run_leaves_the_knowledge_base_unchanged(day_env, first_run):
    from cali.batch.steps import reindex

    _, before = first_run
    after_first = kb_rows(day_env["settings"].analysis.kb_uri)
    assert set(after_first) > set(before)  # it learned something
    again = reindex(day_env["settings"], DAY)
    assert again["knowledge"]["added"] == [] and again["knowledge"]["learned"] > 0
    assert kb_rows(day_env["settings"].analysis.kb_uri) == after_first
    assert len(day_env["slack"].messages()) == 1


def test_cali_batch_run_backfill_prints_one_line_per_day(day_env, first_run, monkeypatch):
    from typer.testing import CliRunner

    from cali.batch.jobs import settings_env
    from cali.cli import app

    for k, v in settings_env(day_env["settings"]).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("CALI_SLACK__WEBHOOK_URL", day_env["slack"].url)
    result = CliRunner().invoke(app, ["batch", "run", "--from", "2026-11-25", "--to", DAY])
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert result.exit_code == 0, result.output
    assert [d["day"] for d in lines] == ["2026-11-25", DAY]
    empty, full = lines
    assert empty["records"] == 0 and empty["learned"] == 0
    assert full["quality_failures"] == 5 and full["report_html"].endswith(f"reports/dt={DAY}/report.html")
    assert len(day_env["slack"].messages()) == 1  # the same failures: not sent again
