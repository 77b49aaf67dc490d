"""The reindex as a Ray Job (JobSubmissionClient) while the analysis app on Ray Serve owns the Milvus Lite
file: the job learns through the KnowledgeBase deployment's `upsert`, and resolutions recorded through the
same method rank above the learned entry."""

from __future__ import annotations

import os
import uuid

import pytest

from tests.integration.conftest import LOCAL_SECRETS_ENV
from tests.support import needs

pytestmark = pytest.mark.integration
DAY = "2026-11-26"


@pytest.fixture(scope="module")
def served(stack, aws_clients, tmp_path_factory):
    needs.module("great_expectations", "great-expectations is not installed: pip install -e .")
    import ray
    from ray import serve

    from cali.batch.synth import write_day
    from cali.bootstrap import LOOPBACK_ENV
    from cali.config import local_settings
    from cali.serve.command import deploy, load_config
    from cali.stack.procs import free_port
    from tests.support.ray_cluster import local_ray_cluster

    tmp = tmp_path_factory.mktemp("batch-serve")
    s3 = aws_clients["s3"]
    bucket = f"bs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    write_day(lambda k, b: s3.put_object(Bucket=bucket, Key=k, Body=b), DAY, 8000, seed=3)
    settings = local_settings(kinesis_endpoint=stack.kinesis_endpoint, aws_endpoint=stack.aws_endpoint,
                              state_dir=tmp / "state", webhook_url="http://127.0.0.1:9/unused", bucket=bucket,
                              batch={"embedder": "hashing", "task_cpus": 0.25, "top_clusters": 500})
    # 4 logical CPUs: the Serve app takes about one, the job's tasks and actors the rest.
    with local_ray_cluster(tmp / "ray.log", num_cpus=4, env=dict(os.environ) | LOCAL_SECRETS_ENV) as cluster:
        os.environ.update(LOOPBACK_ENV)
        ray.init(address=cluster["address"], namespace="batch-serve", logging_level="ERROR", log_to_driver=False)
        try:
            deploy(load_config(), port=free_port(), args_update={"embedder": {"kind": "hashing"},
                                                                 "knowledge": {"uri": str(tmp / "kb.db")}})
            yield {"settings": settings, "dashboard": cluster["dashboard"], "s3": s3, "bucket": bucket,
                   "kb": serve.get_deployment_handle("KnowledgeBase", app_name="cali-analysis")}
        finally:  # no serve.shutdown(): the cluster is this test's own and is stopped next
            ray.shutdown()


@pytest.fixture(scope="module")
def submitted(served):
    from cali.batch.steps import reindex

    return reindex(served["settings"], DAY, ray_address=served["dashboard"])


def test_the_job_learns_through_the_serve_knowledge_base(served, submitted):
    assert submitted["job"]["status"] == "SUCCEEDED" and submitted["job"]["job_id"].startswith("cali-reindex-")
    knowledge = submitted["knowledge"]
    assert knowledge["via"] == "serve:cali-analysis" and knowledge["added"] and knowledge["learned"] > 0
    top = next(c for c in submitted["top_clusters"] if c["knowledge"]["action"] == "added")
    hits = served["kb"].search.remote(top["samples"][0], 5).result(timeout_s=60)
    assert hits[0]["id"] == top["knowledge"]["entry"] and hits[0]["source"] == "learned"
    # A learned entry counts every cluster of the day that matched it (near variants merge into one).
    merged = [c["count"] for c in submitted["top_clusters"] if (c["knowledge"] or {}).get("entry") == hits[0]["id"]]
    assert hits[0]["occurrences"] == sum(merged)


def test_a_resolution_recorded_through_upsert_ranks_above_its_learned_entry(served, submitted):
    from cali.analysis.kb import resolved_incident

    top = next(c for c in submitted["top_clusters"] if c["knowledge"]["action"] == "added")
    learned_id = top["knowledge"]["entry"]
    fingerprint = learned_id.removeprefix("lrn-")
    res = resolved_incident(title="Upstream timeouts fixed by raising the proxy read timeout", category="timeout",
                            root_cause="proxy_read_timeout was 5 s", remediation=["raise proxy_read_timeout"],
                            symptoms=top["samples"][:1], fingerprint=fingerprint)  # as the alert showed it
    out = served["kb"].upsert.remote([res.model_dump(mode="json")]).result(timeout_s=60)
    assert out == {"upserted": 1}
    ids = [h["id"] for h in served["kb"].search.remote(top["samples"][0], 10).result(timeout_s=60)]
    assert res.id in ids and ids.index(res.id) < ids.index(learned_id)


def test_a_second_job_for_the_day_adds_nothing(served, submitted):
    from cali.batch.steps import reindex

    before = served["kb"].count.remote().result(timeout_s=60)
    again = reindex(served["settings"], DAY, ray_address=served["dashboard"])
    assert again["knowledge"]["added"] == [] and sorted(again["knowledge"]["updated"]) == sorted(
        submitted["knowledge"]["added"] + submitted["knowledge"]["updated"])
    assert served["kb"].count.remote().result(timeout_s=60) == before
