"""The actor pipeline on a local loopback Ray against kinesalite + moto: readers, restarts, resharding."""

from __future__ import annotations

import threading
import time
import uuid

import orjson
import pytest

from cali.core.archive import decode_jsonl_gz
from cali.sources.kinesis import PutEntry
from tests.integration.conftest import pipeline_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ray_local():
    from tests.integration.conftest import init_local_ray

    ray = init_local_ray("cali-tests")
    yield ray
    ray.shutdown()


@pytest.fixture
def slack():
    from cali.notify.local_receiver import LocalSlack

    with LocalSlack(port=0) as s:
        yield s


@pytest.fixture
def pipeline(ray_local, stack, fresh_stream, slack, tmp_path, webhook_secret):
    from cali.actors.launch import start_pipeline, stop_pipeline

    settings = pipeline_settings(stack, fresh_stream.stream, tmp_path / "state", webhook_secret(slack.url))
    start_pipeline(settings)
    yield settings, fresh_stream
    stop_pipeline(settings)


def wait_for(pred, timeout=60.0, every=0.2, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def put_records(source, ids, level="INFO", message=lambda i: f"order {i} processed", service=lambda i: "orders-api"):
    # The producer's own id rides along as an attribute: tests follow records by it.
    entries = [PutEntry(orjson.dumps({"time": "2026-11-26T12:00:00Z", "level": level, "service": service(i),
                                      "message": message(i), "test_id": i}) + b"\n", partition_key=i)
               for i in ids]
    for k in range(0, len(entries), 500):
        results = source.put_records(entries[k:k + 500])
        assert all(r.ok for r in results)


def archived_ids(aws_clients, bucket):
    s3 = aws_clients["s3"]
    ids = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="raw/"):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            # Other tests archive into the same bucket, some rows without attributes.
            ids.extend(row["attributes"]["test_id"] for row in decode_jsonl_gz(body)
                       if "test_id" in row.get("attributes", {}))
    return ids


def supervisor_status(settings):
    from cali.actors.launch import pipeline_status

    return pipeline_status(settings)["shards"]


def reader_names(ray, namespace, shard_ids):
    alive = []
    for sid in shard_ids:
        try:
            actor = ray.get_actor(f"shard-reader:{sid}", namespace=namespace)
            ray.get(actor.ping.remote(), timeout=5)
            alive.append(f"shard-reader:{sid}")
        except (ValueError, ray.exceptions.RayError):
            pass
    return sorted(alive)


def test_one_reader_per_shard_and_a_killed_reader_resumes_without_loss(pipeline, ray_local, aws_clients, stack):
    settings, source = pipeline
    ns = settings.ray.namespace
    shard_ids = sorted(s.shard_id for s in source.list_shards())
    names = wait_for(lambda: (lambda n: n if len(n) == 2 else None)(reader_names(ray_local, ns, shard_ids)),
                     what="two shard readers")
    assert names == [f"shard-reader:{sid}" for sid in shard_ids]

    bucket = settings.archive.bucket
    before = set(archived_ids(aws_clients, bucket))
    produced = [f"ev-{uuid.uuid4().hex[:10]}-{i}" for i in range(3000)]
    stop = threading.Event()

    def produce():
        for k in range(0, len(produced), 100):
            put_records(source, produced[k:k + 100])
            time.sleep(0.02)
        stop.set()

    t = threading.Thread(target=produce)
    t.start()
    wait_for(lambda: sum(s.get("records", 0) for s in supervisor_status(settings)) > 300, what="records flowing")
    victim = ray_local.get_actor(names[0], namespace=ns)
    ray_local.kill(victim)  # no_restart: the supervisor's own watch must replace it
    t.join()

    want = set(produced)

    def all_archived():
        got = set(archived_ids(aws_clients, bucket)) - before
        return got if want <= got else None

    got = wait_for(all_archived, timeout=90, every=1.0, what="every produced record in the archive")
    assert got == want
    restarts = {s["shard_id"]: s["restarts"] for s in supervisor_status(settings)}
    assert restarts[names[0].split(":", 1)[1]] >= 1


def test_split_shard_children_read_only_after_parent_ends(pipeline, aws_clients):
    settings, source = pipeline
    parent = sorted(s.shard_id for s in source.list_shards())[0]
    wait_for(lambda: len([s for s in supervisor_status(settings) if s["state"] == "reading"]) == 2,
             what="two readers")
    before = set(archived_ids(aws_clients, settings.archive.bucket))
    first = [f"pre-{uuid.uuid4().hex[:8]}-{i}" for i in range(400)]
    put_records(source, first)
    source.split_shard(parent)
    source.wait_active()
    second = [f"post-{uuid.uuid4().hex[:8]}-{i}" for i in range(400)]
    put_records(source, second)

    children = {s.shard_id for s in source.list_shards() if s.parent_shard_id == parent}
    assert len(children) == 2
    violations, observed = [], []

    def watch():
        rows = {s["shard_id"]: s for s in supervisor_status(settings)}
        observed.append(rows)
        parent_ended = rows.get(parent, {}).get("state") == "shard_end"
        for c in children:
            if c in rows and rows[c]["state"] not in ("waiting",) and not parent_ended:
                violations.append((c, rows[c]["state"], rows.get(parent, {}).get("state")))
        return all(rows.get(c, {}).get("records", 0) > 0 for c in children) and parent_ended

    wait_for(watch, timeout=60, every=0.1, what="children reading after the parent's SHARD_END")
    assert not violations, violations
    want = set(first) | set(second)
    wait_for(lambda: want <= set(archived_ids(aws_clients, settings.archive.bucket)) - before, timeout=60,
             every=1.0, what="all records archived across the split")


# Ten different failures, each of its own length: ten events whatever the grouping concludes
# (failures that differ in one word only would be one event with a variable word).
FAILURES = {
    "payment": "payment declined {}",
    "catalog": "catalog sync lost {}",
    "invoice": "invoice rendering crashed on {}",
    "checkout": "checkout failed: cart {} is empty",
    "inventory": "inventory reservation timed out for request {}",
    "refund": "refund of {} exceeded the captured payment amount",
    "pricing": "pricing rule {} produced a negative total for cart",
    "loyalty": "loyalty points for {} could not be credited to account",
    "search": "search index shard for {} returned no answer within the deadline",
    "shipping": "shipping label could not be printed for order {} at the warehouse",
}
WORDS = list(FAILURES)


def test_two_trackers_alert_each_incident_once(pipeline, slack):
    settings, source = pipeline
    wait_for(lambda: len([s for s in supervisor_status(settings) if s["state"] == "reading"]) == 2,
             what="two readers")
    # 10 distinct failures of 10 services, each repeated 5 times with other ids, spread over both shards
    ids = [f"err-{uuid.uuid4().hex[:8]}-{w}-{k}" for w in WORDS for k in range(5)]
    put_records(source, ids, level="ERROR", service=lambda i: f"{i.split('-')[2]}-api",
                message=lambda i: FAILURES[i.split("-")[2]].format(i.split("-")[1]))
    wait_for(lambda: len(slack.messages()) >= len(WORDS), timeout=60, what="one alert per incident")
    from cali.actors.launch import pipeline_status, stop_pipeline
    from cali.state.sqlite_outbox import SqliteOutbox

    wait_for(lambda: sum(s.get("candidates", 0) for s in supervisor_status(settings)) >= len(ids), timeout=60,
             what="every record through the trackers")
    trackers = pipeline_status(settings)["trackers"]
    stop_pipeline(settings)
    # Everything the trackers created is in the outbox, delivered: exactly one alert per incident.
    counts = SqliteOutbox(settings.state.sqlite_dir / "outbox.db").counts()
    texts = "\n".join(m["text"] for m in slack.messages())
    assert counts == {"pending": 0, "delivered": len(WORDS), "dead": 0}, (counts, texts)
    texts = [m["text"] for m in slack.messages()]
    assert len(texts) == len(WORDS) and {w for w in WORDS if any(w in t for t in texts)} == set(WORDS)
    assert len(trackers) == 2 and sum(t["alerts_sent"] for t in trackers) == len(WORDS)
    assert all(t["alerts_sent"] > 0 for t in trackers)  # routing by service used both
    assert sum(t["alerts_suppressed"] for t in trackers) == len(ids) - len(WORDS)
