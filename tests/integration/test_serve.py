"""The analysis app on Ray Serve (local loopback Ray): HTTP and DeploymentHandle, LLM faults, and the
alert -> analysis flow through the Alerter."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import orjson
import pytest

from tests.integration.conftest import free_port, init_local_ray, pipeline_settings
from tests.support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.integration

RECORD = {"time": "2026-11-26T12:00:00Z", "level": "ERROR", "service": "orders-api",
          "message": "Request failed\njava.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not "
                     "available, request timed out after 30000ms. aws_access_key_id=AKIAIOSFODNN7EXAMPLE"}


@pytest.fixture(scope="module")
def fake_llm():
    with FakeOpenAI("ok") as fake:
        yield fake


@pytest.fixture(scope="module")
def served(tmp_path_factory, fake_llm):
    import ray
    from ray import serve

    from cali.serve.command import deploy, load_config

    # The pipeline test below starts actors on this Ray: they read the local stack's keys from the env.
    init_local_ray("serve-tests")
    db = tmp_path_factory.mktemp("kb") / "kb.db"
    state = tmp_path_factory.mktemp("budget")
    # The hashing embedder keeps the test fast; MiniLM in Serve is exercised by benchmarks/serve_analyze.py.
    url = deploy(load_config(), port=free_port(), args_update={
        "embedder": {"kind": "hashing"}, "knowledge": {"uri": str(db)},
        "analyzer": {"llm": {"base_url": fake_llm.base_url, "model": "fake-model", "timeout_s": 2,
                             "max_retries": 0}, "timeout_s": 3,
                     "budget": {"state": {"backend": "sqlite", "sqlite_dir": str(state)}}}})
    yield url
    serve.shutdown()
    ray.shutdown()


def http(url, body=None, method=None, token=None, with_headers=False):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            out = resp.status, json.loads(resp.read() or b"null"), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        out = exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)
    return out if with_headers else out[:2]


def test_healthz_and_openapi_docs(served):
    status, body = http(f"{served}/healthz")
    assert status == 200 and body["ok"] and body["knowledge_entries"] > 200
    assert body["auth"] == "none"  # the replica read the proxy's host (127.0.0.1) from Serve: no token needed
    status, spec = http(f"{served}/openapi.json")
    assert {"/analyze", "/kb/search", "/healthz"} <= set(spec["paths"])
    with urllib.request.urlopen(f"{served}/docs", timeout=30) as resp:
        assert resp.status == 200 and b"swagger" in resp.read().lower()


def test_analyze_over_http_with_the_llm(served, fake_llm):
    fake_llm.set_mode("ok")
    status, analysis = http(f"{served}/analyze", RECORD)
    assert status == 200, analysis
    assert analysis["mode"] == "llm" and analysis["category"] == "db-pool-exhausted"
    assert 0.0 <= analysis["confidence"] <= 1.0 and analysis["similar"]
    sent = json.dumps(fake_llm.chat_requests())
    assert "AKIAIOSFODNN7EXAMPLE" not in sent and "[REDACTED:" in sent  # redacted before the LLM


def test_invalid_record_is_a_422_naming_the_field(served):
    status, body = http(f"{served}/analyze", {**RECORD, "level": "LOUD"})
    assert status == 422 and "level" in body["detail"]


def test_kb_search_returns_scored_hits(served):
    status, hits = http(f"{served}/kb/search", {"text": "Connection is not available, request timed out", "k": 3})
    assert status == 200 and len(hits) == 3
    assert all({"id", "category", "score"} <= set(h) for h in hits)
    assert hits[0]["score"] >= hits[-1]["score"]


def test_handle_call_and_llm_failure_degrades_to_retrieval_only(served, fake_llm):
    from ray import serve

    handle = serve.get_deployment_handle("Analyzer", app_name="cali-analysis")
    fake_llm.set_mode("error_500")
    try:
        analysis = handle.analyze.remote(RECORD, True).result(timeout_s=60)
    finally:
        fake_llm.set_mode("ok")
    assert analysis["mode"] == "retrieval-only" and analysis["degraded_reason"]
    assert analysis["top_categories"] and "abstained" in analysis
    no_llm = handle.analyze.remote(RECORD, False).result(timeout_s=60)
    assert no_llm["mode"] == "retrieval-only" and no_llm["degraded_reason"] == "llm-not-requested"


TOKEN = "test-" + uuid.uuid4().hex  # this test's own; production reads it from a Kubernetes/AWS secret
SMALL = {"ray_actor_options": {"num_cpus": 0.05}}


def _secure_app(fake_llm, tmp_path, name, *, token, daily_llm_calls=2):
    """A second app on the same proxy under /<name>, with the token forced on and a small shared budget."""
    from cali.serve.app import build_app

    api = {"ray_actor_options": {"num_cpus": 0.05, "runtime_env": {"env_vars": {"CALI_API_TOKEN": token}}}} \
        if token else SMALL
    args = {"embedder": {"kind": "hashing"}, "knowledge": {"uri": str(tmp_path / "kb.db")},
            "analyzer": {"llm": {"base_url": fake_llm.base_url, "model": "fake-model", "timeout_s": 2,
                                 "max_retries": 0}, "timeout_s": 3,
                         "budget": {"daily_llm_calls": daily_llm_calls,
                                    "state": {"backend": "sqlite", "sqlite_dir": str(tmp_path / "state")}}},
            "api": {"require_token": True}}
    overrides = {"Embedder": SMALL, "KnowledgeBase": SMALL, "Api": api,
                 "Analyzer": {**SMALL, "autoscaling_config": {"min_replicas": 2, "max_replicas": 2}}}
    return build_app(args, overrides)


def test_token_required_401_then_one_budget_for_http_and_handle(served, fake_llm, tmp_path):
    from ray import serve

    from cali.state.sqlite_state import SqliteState

    fake_llm.set_mode("ok")
    serve.run(_secure_app(fake_llm, tmp_path, "secure", token=TOKEN), name="cali-secure", route_prefix="/secure",
              blocking=False)
    try:
        status, body = http(f"{served}/secure/healthz")
        assert status == 200 and body["auth"] == "bearer"  # probes stay open
        status, _, headers = http(f"{served}/secure/analyze", RECORD, with_headers=True)
        assert status == 401 and headers["www-authenticate"] == "Bearer"
        status, _, headers = http(f"{served}/secure/analyze", RECORD, token="wrong", with_headers=True)
        assert status == 401 and headers["www-authenticate"] == 'Bearer error="invalid_token"'
        status, _ = http(f"{served}/secure/kb/search", {"text": "pool"})
        assert status == 401
        # Two Analyzer replicas, two paths (HTTP, and the handle the Alerter's follow-ups use), one budget of 2.
        first = http(f"{served}/secure/analyze", RECORD, token=TOKEN)
        handle = serve.get_deployment_handle("Analyzer", app_name="cali-secure")
        second = handle.analyze.remote(RECORD, True).result(timeout_s=60)
        third = http(f"{served}/secure/analyze", RECORD, token=TOKEN)
        fourth = handle.analyze.remote(RECORD, True).result(timeout_s=60)
    finally:
        serve.delete("cali-secure")
    assert first[0] == 200 and first[1]["mode"] == "llm"
    assert second["mode"] == "llm"
    for spent in (third[1], fourth):
        assert spent["mode"] == "retrieval-only"
        assert spent["degraded_reason"] == "llm-daily-budget-exhausted (2 calls/day)"
    key = "llm-budget/" + time.strftime("%Y-%m-%d", time.gmtime())
    assert SqliteState(tmp_path / "state" / "state.db").load(key)["used"] == 2


def test_ingress_refuses_to_start_when_a_token_is_required_and_missing(served, fake_llm, tmp_path):
    from ray import serve

    with pytest.raises(RuntimeError, match="Failed to update the deployments \\['Api'\\]"):
        serve.run(_secure_app(fake_llm, tmp_path, "open", token=None), name="cali-open", route_prefix="/open",
                  blocking=False)
    why = serve.status().applications["cali-open"].deployments["Api"].message
    serve.delete("cali-open")
    assert "AuthConfigError" in why and "without authentication" in why
    status, _ = http(f"{served}/open/analyze", RECORD)
    assert status == 404  # nothing answers there


def test_alert_goes_first_then_its_analysis_names_it(served, fake_llm, stack, fresh_stream, webhook_secret,
                                                     tmp_path):
    """An ERROR on the stream: the alert reaches Slack, then the analysis follow-up; a slow LLM only
    delays (and degrades) the analysis, never the alert."""
    from cali.actors.launch import start_pipeline, stop_pipeline
    from cali.notify.local_receiver import LocalSlack
    from cali.sources.kinesis import PutEntry

    fake_llm.set_mode("slow")
    fake_llm.slow_s = 5
    with LocalSlack(port=0) as slack:
        # The webhook comes from Secrets Manager, as in production: actors never get secrets in their args.
        settings = pipeline_settings(stack, fresh_stream.stream, tmp_path / "st", webhook_secret(slack.url),
                                     analysis={"enabled": True, "timeout_s": 30}, alerting={"trackers": 1})
        start_pipeline(settings)
        try:
            fresh_stream.put_records([PutEntry(orjson.dumps({**RECORD, "event_id": "flow-1"}) + b"\n", "k")])
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and len(slack.messages()) < 2:
                time.sleep(0.2)
        finally:
            stop_pipeline(settings)
            fake_llm.set_mode("ok")
        alert, follow = slack.messages()[:2]
    assert "orders-api" in alert["text"] and not alert["text"].startswith("Analysis")
    assert follow["text"].startswith("Analysis of [HIGH] orders-api ERROR: Request failed")
    # The LLM answers only after 5 s, past the analyzer's 3 s deadline: the alert went out first and
    # the analysis that followed is the retrieval-only one, saying why.
    context = json.dumps(follow["blocks"])
    assert "retrieval only" in context and "llm-timeout" in context
    assert "AKIAIOSFODNN7EXAMPLE" not in json.dumps(slack.messages())
