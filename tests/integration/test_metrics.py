"""After a short pipeline run, the local Ray's Prometheus endpoint serves every CALI metric, with traffic where
there was some: records, archive, DLQ, lag, alerts, Slack latency and failures, outbox, LLM, retrieval, index."""

from __future__ import annotations

import os
import re
import time
import urllib.request
import uuid

import orjson
import pytest

from cali.metrics import CATALOG
from tests.integration.conftest import free_port
from tests.support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.integration

# Gauges that may rightly read 0 after a run that caught up: they must be served, not be non-zero.
MAY_BE_ZERO = {"cali_millis_behind_latest", "cali_pending_bytes", "cali_outbox_depth"}


def scrape(port: int) -> dict[str, float]:
    """Series name -> the sum of its samples' values (histograms: their _count)."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    out: dict[str, float] = {}
    for line in body.splitlines():
        m = re.match(r"^(ray_cali_\w+?)(\{.*\})? ([0-9.eE+-]+)$", line)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(3))
    return out


def test_every_metric_is_served_with_traffic_after_a_short_run(stack, fresh_stream, tmp_path, webhook_secret):
    import ray
    from ray import serve

    from cali.actors.launch import pipeline_status, start_pipeline, stop_pipeline
    from cali.bootstrap import LOOPBACK_ENV
    from cali.notify.local_receiver import LocalSlack
    from cali.serve.command import deploy, load_config
    from cali.sources.kinesis import PutEntry
    from tests.integration.conftest import LOCAL_SECRETS_ENV, pipeline_settings

    port = free_port()
    os.environ.update(LOOPBACK_ENV)
    for k, v in LOCAL_SECRETS_ENV.items():
        os.environ.setdefault(k, v)
    ray.init(address="local", num_cpus=2, include_dashboard=False, namespace=f"metrics-{uuid.uuid4().hex[:6]}",
             logging_level="ERROR",
             log_to_driver=False, runtime_env={"env_vars": LOOPBACK_ENV}, _metrics_export_port=port,
             _system_config={"metrics_report_interval_ms": 1000})  # export every second, not every 10
    try:
        with FakeOpenAI("ok") as llm, LocalSlack(port=0) as slack:
            serve_port = free_port()
            deploy(load_config(), port=serve_port, args_update={
                "embedder": {"kind": "hashing"}, "knowledge": {"uri": str(tmp_path / "kb.db")},
                "analyzer": {"llm": {"base_url": llm.base_url, "model": "fake-model", "max_retries": 0}}})
            from cali.serve.console import deploy_console

            console_url = deploy_console(load_config(name="cali-console"), port=serve_port,
                                         args_update={"index": {"sqlite_path": str(tmp_path / "st" / "index.db")}})
            slack.script([("status", 404)])  # the first delivery fails for good (dead-lettered)
            settings = pipeline_settings(stack, fresh_stream.stream, tmp_path / "st", webhook_secret(slack.url),
                                         analysis={"enabled": True, "timeout_s": 30})
            start_pipeline(settings)
            try:
                lines = [{"time": "2026-11-26T12:00:00Z", "level": "INFO", "service": "api", "message": f"ok {i}"}
                         for i in range(20)]
                lines += [{"time": "2026-11-26T12:00:01Z", "level": "ERROR", "service": "api",
                           "message": "payment gateway refused the card"}] * 3
                entries = [PutEntry(orjson.dumps(x) + b"\n", f"k{i}") for i, x in enumerate(lines)]
                entries.append(PutEntry(b"{not json\n", "bad"))
                fresh_stream.put_records(entries)
                time.sleep(2)  # the second incident comes after the first was (not) delivered
                fresh_stream.put_records([PutEntry(orjson.dumps(
                    {"time": "2026-11-26T12:00:02Z", "level": "ERROR", "service": "db",
                     "message": "Connection pool exhausted after 30000ms"}) + b"\n", "k-db")])
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    alerter = pipeline_status(settings)["alerter"] or {}
                    if (alerter.get("analysis") or {}).get("posted", 0) >= 1 and alerter.get("delivered", 0) >= 2:
                        break
                    time.sleep(0.5)
                urllib.request.urlopen(f"{console_url}/api/incidents", timeout=30).read()
                want = {m.prometheus.removesuffix("_bucket") + ("_count" if m.kind == "histogram" else ""): m
                        for m in CATALOG.values()}
                got: dict[str, float] = {}
                deadline = time.monotonic() + 60  # Ray exports every few seconds
                while time.monotonic() < deadline:
                    got = scrape(port)
                    missing = [s for s, m in want.items() if s not in got or (m.name not in MAY_BE_ZERO and
                                                                               got[s] <= 0)]
                    if not missing:
                        break
                    time.sleep(2)
                # Every batch a reader sent its Indexer was taken: nothing stays counted as queued once the
                # traffic stops (no later batch comes to tidy the count).
                feeds: list[dict] = []
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    feeds = [s.get("index") or {} for s in pipeline_status(settings)["shards"]]
                    if all(f.get("queued") == 0 for f in feeds) and sum(f.get("indexed", 0) for f in feeds) >= 4:
                        break
                    time.sleep(0.5)
            finally:
                stop_pipeline(settings)
            assert feeds and all(f.get("queued") == 0 for f in feeds), feeds
            assert sum(f.get("indexed", 0) for f in feeds) >= 4, feeds
            assert not missing, f"not served, or zero after traffic: {missing}; served: {sorted(got)}"
            assert got["ray_cali_records_in_total"] >= 25 and got["ray_cali_records_dead_lettered_total"] >= 1
            assert got["ray_cali_alerts_suppressed_total"] >= 2 and got["ray_cali_slack_delivery_failures_total"] >= 1
            assert got["ray_cali_llm_budget_left"] > 0
            # The same run fed the index: the readers' lines (through their Indexer actors) and the alerter's
            # incidents, with the analysis that followed the delivered alert.
            from cali.core.index import IncidentQuery, LogQuery
            from cali.index.sqlite_fts import SqliteIndex

            index = SqliteIndex(tmp_path / "st" / "index.db")
            assert index.search_logs(LogQuery(text="payment gateway refused")).total == 3
            # The first delivery failed for good (dead-lettered, not in the index); the other incident was
            # delivered and analysed.
            incidents = index.incidents(IncidentQuery())
            assert len(incidents) == 1 and incidents[0]["analysis"] and incidents[0]["count"] >= 1, incidents
    finally:
        serve.shutdown()
        ray.shutdown()
