"""The pipeline on a local Ray against kinesalite + moto: two clusters on one stream, an S3 outage, child
shards under start=LATEST, thousands of open incidents, and a dead pipeline that must be noticed."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter

import orjson
import pytest

from cali.core.archive import decode_jsonl_gz
from cali.sources.kinesis import PutEntry
from tests.integration.conftest import init_local_ray, pipeline_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ray_local():
    ray = init_local_ray("cali-hardening")
    yield ray
    ray.shutdown()


@pytest.fixture
def slack():
    from cali.notify.local_receiver import LocalSlack

    with LocalSlack(port=0) as s:
        yield s


def wait_for(pred, timeout=90.0, every=0.25, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def put(source, ids, level="INFO", service=lambda i: "orders-api", message=lambda i: f"order {i} processed"):
    for k in range(0, len(ids), 500):
        entries = [PutEntry(orjson.dumps({"time": "2026-11-26T12:00:00Z", "level": level, "service": service(i),
                                          "message": message(i), "test_id": i}) + b"\n", partition_key=i)
                   for i in ids[k:k + 500]]
        assert all(r.ok for r in source.put_records(entries))


def archived(s3, bucket, stream_shards):
    """test_id of every archived row of this stream's shards (duplicates kept)."""
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="raw/"):
        for obj in page.get("Contents", []):
            if obj["Key"].rsplit("/", 1)[1].rsplit("-", 2)[0] in stream_shards:
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                # Other tests archive into the same bucket, some rows without attributes.
                out.extend(r["attributes"]["test_id"] for r in decode_jsonl_gz(body)
                           if "test_id" in r.get("attributes", {}))
    return out


def shards_of(settings):
    from cali.actors.launch import pipeline_status

    return {row["shard_id"]: row for row in pipeline_status(settings)["shards"]}


ACTIVE = {"reading", "alert-ahead", "waiting-for-trackers", "throttled", "error"}


def test_two_pipelines_on_one_stream_never_read_a_shard_at_once_and_hand_over_without_loss(
        ray_local, stack, fresh_stream, slack, tmp_path, webhook_secret, dynamodb_tables, aws_clients):
    """A RayService upgrade runs a second cluster beside the first: leases keep each shard (and each tracker
    partition, and the alerter's drain) with one of them; when the first stops, the second takes all."""
    from cali.actors.launch import start_pipeline, stop_pipeline

    hook = webhook_secret(slack.url)
    a = pipeline_settings(stack, fresh_stream.stream, tmp_path / "a", hook, state=dynamodb_tables,
                          pipeline={"worker_id": "cluster-a", "lease_ttl_s": 15})
    b = pipeline_settings(stack, fresh_stream.stream, tmp_path / "b", hook, state=dynamodb_tables,
                          pipeline={"worker_id": "cluster-b", "lease_ttl_s": 15})
    shard_ids = {s.shard_id for s in fresh_stream.list_shards()}
    start_pipeline(a)
    wait_for(lambda: all(r.get("state") == "reading" for r in shards_of(a).values()) and len(shards_of(a)) == 2,
             what="cluster a reading both shards")
    start_pipeline(b)
    produced = [f"ev-{uuid.uuid4().hex[:8]}-{i}" for i in range(2400)]
    incidents = ["inventory", "payment", "checkout", "shipping", "invoice", "refund"]
    errors = [f"err-{w}-{k}-{uuid.uuid4().hex[:6]}" for k in range(4) for w in incidents]
    overlaps, seen_b = [], set()
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                ra, rb = shards_of(a) if not stopped.is_set() else {}, shards_of(b)
            except Exception:  # a's actors going away while it stops
                time.sleep(0.2)
                continue
            for sid in shard_ids:
                if ra.get(sid, {}).get("state") in ACTIVE and rb.get(sid, {}).get("state") in ACTIVE:
                    overlaps.append((sid, ra[sid]["state"], rb[sid]["state"]))
                if rb.get(sid, {}).get("state") in ACTIVE:
                    seen_b.add(sid)
            time.sleep(0.2)

    stopped = threading.Event()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for k in range(0, len(produced), 200):
            put(fresh_stream, produced[k:k + 200])
            part = errors[k // 200 * 2:k // 200 * 2 + 2]
            if part:
                put(fresh_stream, part, level="ERROR", service=lambda i: f"{i.split('-')[1]}-api",
                    message=lambda i: f"{i.split('-')[1]} call failed for request {i.split('-')[3]}")
            if k == 1000:
                assert not seen_b  # b waited: a holds every lease
                stopped.set()
                stop_pipeline(a)  # graceful: a writes what it buffered, checkpoints, hands leases over
            time.sleep(0.3)
        wait_for(lambda: seen_b == shard_ids, what="cluster b reading every shard")
        s3 = aws_clients["s3"]
        wait_for(lambda: set(produced) | set(errors) <= set(archived(s3, stack.bucket, shard_ids)),
                 what="every record archived")
        wait_for(lambda: len(slack.messages()) >= len(incidents), what="one alert per incident")
        time.sleep(2)  # room for a duplicate to show up, if there were one
    finally:
        done.set()
        sampler.join(5)
        stop_pipeline(b)
        if not stopped.is_set():
            stop_pipeline(a)
    rows = archived(aws_clients["s3"], stack.bucket, shard_ids)
    dupes = [i for i, n in Counter(rows).items() if n > 1]
    assert not overlaps, overlaps[:5]
    assert not dupes, f"{len(dupes)} records archived twice, e.g. {dupes[:3]}"
    firsts = [m["text"] for m in slack.messages() if not m["text"].startswith(("Analysis", "Summary"))]
    assert len(firsts) == len(incidents), firsts  # each incident alerted once, by one of the two clusters


def test_an_s3_outage_does_not_stop_alerting_and_the_archive_catches_up(
        ray_local, stack_config_factory, tmp_path, slack):
    """moto frozen (SIGSTOP) mid-run: alerts keep arriving; once it answers again the archive and the
    checkpoints catch up with nothing lost and nothing archived twice."""
    from cali.actors.launch import pipeline_status, start_pipeline, stop_pipeline
    from cali.sources.kinesis import KinesisSource
    from cali.stack import boto_client, down, procs, up

    cfg = stack_config_factory(tmp_path / "stack", webhook_url=slack.url)
    up(cfg)
    moto_pid = procs.read_pid(cfg.state_dir, "moto")["pid"]
    settings = pipeline_settings(cfg, cfg.stream, tmp_path / "state", cfg.secret_name,
                                 archive={"max_pending_mb": 0.05})
    source = KinesisSource(boto_client("kinesis", cfg.kinesis_endpoint, cfg.region, verify=cfg.kinesis_verify),
                           cfg.stream)
    s3 = boto_client("s3", cfg.aws_endpoint, cfg.region)
    shard_ids = {s.shard_id for s in source.list_shards()}
    start_pipeline(settings)
    frozen = False
    try:
        before = [f"pre-{i}" for i in range(200)]
        put(source, before)
        wait_for(lambda: set(before) <= set(archived(s3, cfg.bucket, shard_ids)), what="the first records archived")
        os.kill(moto_pid, signal.SIGSTOP)
        frozen = True
        during = [f"mid-{i}" for i in range(1500)]
        words = ["alpha", "bravo", "charlie", "delta", "echo"]
        errors = [f"x-{w}-{k}" for w in words for k in range(3)]
        put(source, during)
        put(source, errors, level="ERROR", service=lambda i: f"{i.split('-')[1]}-svc",
            message=lambda i: f"{i.split('-')[1]} broke on attempt {i.split('-')[2]}")
        wait_for(lambda: len(slack.messages()) >= len(words), timeout=60, what="alerts while S3 is down")
        # Past the budget, still alerting: a reader goes alert-ahead at the poll after the one that crossed it.
        wait_for(lambda: any(r.get("alert_ahead") for r in pipeline_status(settings)["shards"]), timeout=30,
                 what="a reader in alert-ahead")
        os.kill(moto_pid, signal.SIGCONT)
        frozen = False
        want = set(before) | set(during) | set(errors)
        wait_for(lambda: want <= set(archived(s3, cfg.bucket, shard_ids)), timeout=180, every=1,
                 what="the archive catching up")
        wait_for(lambda: all(r.get("pending_bytes", 1) == 0 and r.get("last_checkpoint")
                             for r in pipeline_status(settings)["shards"]), what="checkpoints after the outage")
        rows = archived(s3, cfg.bucket, shard_ids)
        assert not [i for i, n in Counter(rows).items() if n > 1]  # re-read records were archived once
    finally:
        if frozen:
            os.kill(moto_pid, signal.SIGCONT)
        stop_pipeline(settings)
        down(cfg)
    firsts = [m["text"] for m in slack.messages() if not m["text"].startswith(("Analysis", "Summary"))]
    assert len(firsts) == 5  # each incident once: the re-read records were dropped by the trackers


def test_children_of_a_split_are_read_from_their_start_under_start_latest(
        ray_local, stack, fresh_stream, slack, tmp_path, webhook_secret, aws_clients):
    from cali.actors.launch import start_pipeline, stop_pipeline

    settings = pipeline_settings(stack, fresh_stream.stream, tmp_path / "state", webhook_secret(slack.url),
                                 kinesis={"start": "LATEST", "rescan_interval_s": 2})
    start_pipeline(settings)
    try:
        wait_for(lambda: len([r for r in shards_of(settings).values() if r.get("state") == "reading"]) == 2,
                 what="two readers")
        time.sleep(1)  # LATEST iterators are taken: what follows is after them
        parent = sorted(s.shard_id for s in fresh_stream.list_shards())[0]
        first = [f"pre-{uuid.uuid4().hex[:6]}-{i}" for i in range(300)]
        put(fresh_stream, first)
        fresh_stream.split_shard(parent)
        fresh_stream.wait_active()
        second = [f"post-{uuid.uuid4().hex[:6]}-{i}" for i in range(300)]
        put(fresh_stream, second)  # lands in the children before any reader of theirs exists
        shard_ids = {s.shard_id for s in fresh_stream.list_shards()}
        want = set(first) | set(second)
        wait_for(lambda: want <= set(archived(aws_clients["s3"], stack.bucket, shard_ids)), what="every record")
    finally:
        stop_pipeline(settings)


@pytest.mark.parametrize("backend,incidents", [("sqlite", 2000), ("dynamodb", 300)])
def test_thousands_of_open_incidents_keep_every_item_small_and_no_shard_stalls(
        backend, incidents, ray_local, stack, fresh_stream, slack, tmp_path, webhook_secret, request, aws_clients):
    """2,000 open incidents across 50 services, each with a 13 KB stack: state is an item per window, so no
    item nears DynamoDB's 400 KB and every record is counted. (DynamoDB on moto copies the whole table in
    every transaction, so that backend runs a smaller count; the items are the same.)"""
    from cali.actors.launch import pipeline_status, start_pipeline, stop_pipeline

    state = request.getfixturevalue("dynamodb_tables") if backend == "dynamodb" else {}
    settings = pipeline_settings(stack, fresh_stream.stream, tmp_path / "state", webhook_secret(slack.url),
                                 state=state)
    ids = [str(i) for i in range(incidents)]
    stack_text = "java.lang.IllegalStateException: boom\n" + "\tat com.example.Service.call(Service.java:1)\n" * 300
    start_pipeline(settings)
    try:
        for k in range(0, incidents, 250):
            entries = [PutEntry(orjson.dumps({
                "time": "2026-11-26T12:00:00Z", "level": "ERROR", "service": f"svc-{int(i) % 50}",
                # within a service each record has its own length: templates that can never be one
                "message": " ".join(["failed"] * (int(i) // 50 + 1)) + " at stage",
                "stack": stack_text, "test_id": i}) + b"\n", partition_key=i) for i in ids[k:k + 250]]
            assert all(r.ok for r in fresh_stream.put_records(entries))

        def counted():
            st = pipeline_status(settings, timeout=30)
            return sum(t["alerts_sent"] for t in st["trackers"]) >= incidents and \
                sum(r.get("candidates", 0) for r in st["shards"]) >= incidents and st
        st = wait_for(counted, timeout=300, every=2, what=f"{incidents} incidents counted")
        assert sum(t["open_incidents"] for t in st["trackers"]) == incidents
        assert all(r.get("set_aside", 0) == 0 for r in st["shards"])
    finally:
        stop_pipeline(settings)
    sizes = _item_sizes(settings, aws_clients)
    assert len(sizes) > incidents and max(sizes) < 400_000, (len(sizes), max(sizes))


def _item_sizes(settings, aws_clients) -> list[int]:
    if settings.state.backend == "sqlite":
        import sqlite3

        db = sqlite3.connect(settings.state.sqlite_dir / "state.db")
        return [n for (n,) in db.execute("SELECT length(value) + length(pk) + length(sk) FROM items")]
    sizes = []
    for page in aws_clients["dynamodb"].get_paginator("scan").paginate(TableName=settings.state.state_table):
        sizes.extend(len(orjson.dumps(item)) for item in page["Items"])
    return sizes


def test_a_dead_pipeline_is_noticed_and_cali_run_exits(ray_local, stack, fresh_stream, slack, tmp_path,
                                                       webhook_secret):
    import ray

    from cali.actors import names
    from cali.actors.launch import pipeline_health, start_pipeline, stop_pipeline
    from cali.cli import _watch

    settings = pipeline_settings(stack, fresh_stream.stream, tmp_path / "state", webhook_secret(slack.url),
                                 pipeline={"check_interval_s": 0.5})
    start_pipeline(settings)
    try:
        wait_for(lambda: pipeline_health(settings).ok, what="a healthy pipeline")
        ns = settings.ray.namespace
        for name in (names.SUPERVISOR, names.tracker(0)):
            ray.kill(ray.get_actor(name, namespace=ns), no_restart=True)
        health = wait_for(lambda: (h := pipeline_health(settings, timeout=2)) and not h.ok and h, what="noticed")
        assert any(names.SUPERVISOR in p for p in health.problems), health.problems
        assert _watch(settings) == 3  # `cali run` exits non-zero, for its service manager to restart it
    finally:
        stop_pipeline(settings)
