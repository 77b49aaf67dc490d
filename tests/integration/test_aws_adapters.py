"""S3 archive, DynamoDB checkpoints/state and Secrets Manager adapters against a moto server."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import boto3
import orjson
import pytest
from botocore.config import Config

from cali.core.archive import DeadLetter, decode_jsonl_gz, dlq_key, encode_jsonl_gz, raw_key
from cali.core.clock import FakeClock
from cali.secrets import SecretError
from cali.secrets.aws import SecretsManagerSecret
from cali.secrets.env import EnvSecret
from cali.sinks.s3_archive import ArchiveError, S3Archive
from cali.stack.procs import free_port
from cali.state import SEQUENCE_WIDTH, StateBackendError, StateTooLarge, VersionConflict
from cali.state.dynamodb_checkpoints import DynamoDBCheckpoints
from cali.state.dynamodb_state import DynamoDBState
from tests.support import needs

pytestmark = pytest.mark.integration

BUCKET = "cali-archive"
CHECKPOINTS = "cali-checkpoints"
STATE = "cali-state"
SECRET = "cali/slack-webhook"
WEBHOOK = "https://hooks.slack.example/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"
SEQ_A = "49590338271490256608559692538361571095921575989136588898"  # 56 digits
SEQ_B = "49590338271490256608559692540925702759324208523137515618"
ARRIVED = datetime(2026, 11, 26, 14, 3, 7, tzinfo=UTC)




def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"moto_server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"moto_server did not answer on {url} within {timeout_s}s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory):
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists():
        needs.missing(f"moto_server not found next to {sys.executable}: pip install 'moto[server]'")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url, proc, log)
        yield url
    finally:
        os.kill(proc.pid, 15)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, 9)
            proc.wait(10)


def _client(url: str, service: str):
    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="testing",
                                    aws_secret_access_key="testing")
    return session.client(service, endpoint_url=url, config=Config(
        connect_timeout=3, read_timeout=10, retries={"max_attempts": 2, "mode": "standard"}))


@pytest.fixture(scope="module")
def aws(moto_url):
    clients = {name: _client(moto_url, name) for name in ("s3", "dynamodb", "secretsmanager")}
    clients["s3"].create_bucket(Bucket=BUCKET)
    for table, keys in ((CHECKPOINTS, ("shard_key",)), (STATE, ("pk", "sk"))):
        clients["dynamodb"].create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": k, "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"), strict=False)],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys])
    clients["secret_arn"] = clients["secretsmanager"].create_secret(Name=SECRET, SecretString=WEBHOOK)["ARN"]
    clients["url"] = moto_url
    return clients


# --- S3 archive -------------------------------------------------------------------------------------------


def test_archive_put_list_get_decode(aws):
    archive = S3Archive(aws["s3"], BUCKET)
    docs = [{"message": f"boom {i}", "level": "ERROR", "service": "checkout"} for i in range(50)]
    key = raw_key("shardId-000000000001", SEQ_A, SEQ_B, ARRIVED)
    archive.put_batch(key, encode_jsonl_gz(orjson.dumps(d) for d in docs))
    assert key in archive.list_keys("raw/dt=2026-11-26/hour=14/")
    assert decode_jsonl_gz(archive.get(key)) == docs
    head = aws["s3"].head_object(Bucket=BUCKET, Key=key)
    assert head["ContentType"] == "application/x-ndjson"
    assert head["ContentEncoding"] == "gzip"


def test_archive_sends_content_md5(aws):
    # moto 5 does not verify Content-MD5 (verified: a wrong digest is accepted), so check what is sent.
    seen: list[dict] = []

    def capture(request, **_):
        seen.append(dict(request.headers))

    aws["s3"].meta.events.register("before-send.s3.PutObject", capture)
    try:
        body = encode_jsonl_gz([b'{"a":1}'])
        S3Archive(aws["s3"], BUCKET).put_batch("raw/dt=2026-01-01/hour=00/md5-1-1.jsonl.gz", body)
    finally:
        aws["s3"].meta.events.unregister("before-send.s3.PutObject", capture)
    expected = base64.b64encode(hashlib.md5(body).digest()).decode()
    headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in seen[-1].items()}
    assert headers["content-md5"] == expected


def test_replay_overwrites_the_same_object(aws):
    archive = S3Archive(aws["s3"], BUCKET)
    rows = [orjson.dumps({"n": i}) for i in range(10)]
    key = raw_key("shardId-000000000002", "100", "109", ARRIVED)
    archive.put_batch(key, encode_jsonl_gz(rows))
    before = archive.list_keys("raw/")
    etag = aws["s3"].head_object(Bucket=BUCKET, Key=key)["ETag"]
    archive.put_batch(raw_key("shardId-000000000002", "100", "109", ARRIVED), encode_jsonl_gz(rows))
    assert archive.list_keys("raw/") == before
    assert aws["s3"].head_object(Bucket=BUCKET, Key=key)["ETag"] == etag  # byte-identical replay


def test_dlq_object_round_trip(aws):
    archive = S3Archive(aws["s3"], BUCKET)
    letters = [DeadLetter("bad_json", "Expecting value: line 1 column 1", "shardId-000000000001", SEQ_A, 0,
                          b"not json \xff", ARRIVED)]
    key = dlq_key("shardId-000000000001", SEQ_A, SEQ_A, ARRIVED)
    archive.put_batch(key, encode_jsonl_gz(dl.to_json() for dl in letters))
    assert key.startswith("dlq/dt=2026-11-26/")
    assert [DeadLetter.from_dict(d) for d in decode_jsonl_gz(archive.get(key))] == letters


def test_archive_errors_name_bucket_key_code_and_fix(aws):
    archive = S3Archive(aws["s3"], "cali-no-such-bucket")
    with pytest.raises(ArchiveError) as exc:
        archive.put_batch("raw/x.jsonl.gz", b"x")
    msg = str(exc.value)
    assert "PutObject s3://cali-no-such-bucket/raw/x.jsonl.gz" in msg and "NoSuchBucket" in msg
    assert "aws s3 mb s3://cali-no-such-bucket" in msg
    with pytest.raises(ArchiveError, match="NoSuchKey"):
        S3Archive(aws["s3"], BUCKET).get("raw/missing.jsonl.gz")
    health = archive.healthcheck()
    assert not health.ok and "NoSuchBucket" in health.detail and "aws s3 mb" in health.detail
    assert S3Archive(aws["s3"], BUCKET).healthcheck().ok


def test_archive_unreachable_endpoint_is_explained():
    client = _client(f"http://127.0.0.1:{free_port()}", "s3")
    health = S3Archive(client, BUCKET).healthcheck()
    assert not health.ok and "reachable" in health.detail


# --- DynamoDB checkpoints -----------------------------------------------------------------------------


@pytest.fixture
def stream():
    return f"cali-logs-{uuid.uuid4().hex[:8]}"  # each test gets its own items


def leased(cp, stream, shard="s1", owner="a"):
    """Checkpoints are fenced by the lease: a writer holds it first."""
    assert cp.take_lease(stream, shard, owner, cp.get_lease(stream, shard).counter) is not None
    return cp


def test_checkpoint_round_trip_and_item_layout(aws, stream):
    cp = leased(DynamoDBCheckpoints(aws["dynamodb"], CHECKPOINTS, clock=FakeClock()), stream,
                "shardId-000000000001", "shard-reader:1")
    assert cp.get_checkpoint(stream, "shardId-000000000001") is None
    assert cp.put_checkpoint(stream, "shardId-000000000001", SEQ_A, "shard-reader:1") is True
    assert cp.get_checkpoint(stream, "shardId-000000000001") == SEQ_A
    item = aws["dynamodb"].get_item(TableName=CHECKPOINTS,
                                    Key={"shard_key": {"S": f"{stream}/shardId-000000000001"}})["Item"]
    assert len(item["seq"]["S"]) == SEQUENCE_WIDTH and item["seq"]["S"].endswith(SEQ_A)
    assert item["sequence"]["S"] == SEQ_A
    assert item["owner"]["S"] == "shard-reader:1" and item["counter"]["N"] == "1"
    assert item["updated_at"]["S"] == "2026-01-01T00:00:00+00:00"


def test_checkpoint_never_moves_backwards(aws, stream, caplog):
    cp = leased(DynamoDBCheckpoints(aws["dynamodb"], CHECKPOINTS), stream)
    assert cp.put_checkpoint(stream, "s1", SEQ_B, "a")
    with caplog.at_level(logging.WARNING, logger="cali.state.dynamodb_checkpoints"):
        assert cp.put_checkpoint(stream, "s1", SEQ_A, "a") is False
    assert "stale checkpoint ignored" in caplog.text and SEQ_B in caplog.text
    assert cp.put_checkpoint(stream, "s1", SEQ_B, "a") is False  # same value: no-op
    assert cp.get_checkpoint(stream, "s1") == SEQ_B


def test_56_digit_sequences_order_as_numbers(aws, stream):
    cp = leased(DynamoDBCheckpoints(aws["dynamodb"], CHECKPOINTS), stream)
    seq_57 = "1" + "0" * 56
    assert seq_57 < "9" * 56  # unpadded, string order would get this wrong
    assert cp.put_checkpoint(stream, "s1", "9" * 56, "a")
    assert cp.put_checkpoint(stream, "s1", seq_57, "a")
    assert cp.put_checkpoint(stream, "s1", "9" * 56, "a") is False
    assert cp.get_checkpoint(stream, "s1") == seq_57
    assert cp.put_checkpoint(stream, "s1", "9" * 129, "a")  # the largest the Kinesis API allows
    assert cp.get_checkpoint(stream, "s1") == "9" * 129


def test_two_writers_interleaved(aws, stream):
    # Two clients of one lease holder (a reader and its restarted replacement): whatever order their
    # writes land in, the checkpoint only moves forward.
    a = leased(DynamoDBCheckpoints(_client(aws["url"], "dynamodb"), CHECKPOINTS), stream)
    b = DynamoDBCheckpoints(_client(aws["url"], "dynamodb"), CHECKPOINTS)
    seqs = [str(int(SEQ_A) + 1000 * i) for i in range(40)]
    order = random.Random(7).sample(seqs, len(seqs))
    high = 0
    for i, s in enumerate(order):
        advanced = (a if i % 2 else b).put_checkpoint(stream, "s1", s, "a")
        assert advanced == (int(s) > high)
        high = max(high, int(s))
        assert int(a.get_checkpoint(stream, "s1")) == high
    assert b.get_checkpoint(stream, "s1") == seqs[-1]


def test_two_writers_concurrent(aws, stream):
    seqs = [str(int(SEQ_A) + i) for i in range(120)]
    leased(DynamoDBCheckpoints(aws["dynamodb"], CHECKPOINTS), stream)

    def run(seed: int) -> None:
        cp = DynamoDBCheckpoints(_client(aws["url"], "dynamodb"), CHECKPOINTS)
        for s in random.Random(seed).sample(seqs, len(seqs)):
            cp.put_checkpoint(stream, "s1", s, "a")

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert DynamoDBCheckpoints(aws["dynamodb"], CHECKPOINTS).get_checkpoint(stream, "s1") == seqs[-1]


def test_shard_end(aws, stream):
    cp = leased(DynamoDBCheckpoints(aws["dynamodb"], CHECKPOINTS), stream)
    assert cp.is_shard_ended(stream, "s1") is False
    cp.put_checkpoint(stream, "s1", SEQ_A, "a")
    cp.mark_shard_end(stream, "s1")
    cp.mark_shard_end(stream, "s1")
    assert cp.is_shard_ended(stream, "s1")
    assert cp.get_checkpoint(stream, "s1") == SEQ_A
    cp.mark_shard_end(stream, "empty")  # closed before anything was checkpointed
    assert cp.is_shard_ended(stream, "empty") and cp.get_checkpoint(stream, "empty") is None
    leased(cp, stream, "empty")
    assert cp.put_checkpoint(stream, "empty", "1", "a")  # an item without seq still accepts one


def test_checkpoint_health_and_missing_table(aws):
    assert DynamoDBCheckpoints(aws["dynamodb"], CHECKPOINTS).healthcheck().ok
    missing = DynamoDBCheckpoints(aws["dynamodb"], "cali-nope")
    health = missing.healthcheck()
    assert not health.ok and "ResourceNotFoundException" in health.detail
    assert "aws dynamodb create-table --table-name cali-nope" in health.detail
    with pytest.raises(StateBackendError, match="GetItem on table 'cali-nope'"):
        missing.get_checkpoint("s", "x")
    wrong = DynamoDBCheckpoints(aws["dynamodb"], STATE).healthcheck()  # keyed by pk/sk, not shard_key
    assert not wrong.ok and "expected HASH shard_key" in wrong.detail


# --- DynamoDB state -----------------------------------------------------------------------------------


def test_state_round_trip_and_versions(aws):
    st = DynamoDBState(aws["dynamodb"], STATE)
    key = f"throttle-{uuid.uuid4().hex[:6]}"
    assert st.load(key) is None
    value = {"groups": {"g1": {"count": 3}}, "ünï": [1, 2.5, None, True]}
    assert st.save(key, value) == 1
    assert st.load(key) == value
    assert st.save(key, {"v": 2}) == 2
    assert st.save(key, {"v": 3}, expected_version=2) == 3
    assert st.load_versioned(key) == ({"v": 3}, 3)


def test_state_version_conflict(aws):
    a, b = DynamoDBState(aws["dynamodb"], STATE), DynamoDBState(_client(aws["url"], "dynamodb"), STATE)
    key = f"miner-{uuid.uuid4().hex[:6]}"
    assert a.save(key, {"clusters": []}, expected_version=0) == 1
    with pytest.raises(VersionConflict) as exc:
        b.save(key, {"clusters": ["b"]}, expected_version=0)
    assert exc.value.actual == 1
    assert b.save(key, {"clusters": ["b"]}, expected_version=1) == 2
    with pytest.raises(VersionConflict, match="expected version 1, found version 2"):
        a.save(key, {"clusters": ["a"]}, expected_version=1)
    with pytest.raises(VersionConflict, match="no item"):
        a.save(f"{key}-absent", {}, expected_version=4)
    assert a.load(key) == {"clusters": ["b"]}


def test_large_state_is_gzipped_and_too_large_is_refused(aws):
    st = DynamoDBState(aws["dynamodb"], STATE)
    key = f"big-{uuid.uuid4().hex[:6]}"
    big = {"templates": [f"user <*> logged in from <*> attempt {i}" for i in range(12_000)]}
    assert len(orjson.dumps(big)) > 400_000
    assert st.save(key, big) == 1
    item = aws["dynamodb"].get_item(TableName=STATE, Key={"pk": {"S": key}, "sk": {"S": "#"}})["Item"]
    assert "value_gz" in item and "value" not in item
    assert st.load(key) == big
    assert st.save(key, {"small": True}) == 2  # back to a string attribute, the binary one removed
    item = aws["dynamodb"].get_item(TableName=STATE, Key={"pk": {"S": key}, "sk": {"S": "#"}})["Item"]
    assert "value" in item and "value_gz" not in item
    noise = {"blob": os.urandom(500_000).hex()}  # incompressible below the limit
    with pytest.raises(StateTooLarge, match="390 KB|399,360-byte limit"):
        st.save(key, noise)
    assert st.load(key) == {"small": True}


# --- Secrets ------------------------------------------------------------------------------------------


def test_secret_by_name_and_by_arn(aws):
    by_name = SecretsManagerSecret(aws["secretsmanager"], SECRET)
    by_arn = SecretsManagerSecret(aws["secretsmanager"], aws["secret_arn"])
    assert by_name.get().get_secret_value() == WEBHOOK
    assert by_arn.get().get_secret_value() == WEBHOOK
    health = by_arn.healthcheck()
    assert health.ok and health.detail == f"found, {len(WEBHOOK)} chars"


@pytest.mark.parametrize(("secret_string", "json_key"), [
    (json.dumps({"url": WEBHOOK}), None),
    (json.dumps({"webhook_url": WEBHOOK, "channel": "#alerts"}), None),
    (json.dumps({"slack": WEBHOOK}), "slack"),
    (f"  {WEBHOOK}\n", None),
])
def test_secret_forms(aws, secret_string, json_key):
    name = f"cali/form-{uuid.uuid4().hex[:6]}"
    aws["secretsmanager"].create_secret(Name=name, SecretString=secret_string)
    assert SecretsManagerSecret(aws["secretsmanager"], name, json_key=json_key).get().get_secret_value() == WEBHOOK


@pytest.mark.parametrize(("secret_string", "json_key", "match"), [
    (json.dumps({"token": WEBHOOK}), None, r"without 'url' or 'webhook_url' \(its keys: \['token'\]\)"),
    (json.dumps({"url": WEBHOOK}), "webhook", "without 'webhook'"),
    (WEBHOOK, "url", "plain string but json_key='url'"),
    ('{"url": "' + WEBHOOK, None, "not valid JSON"),
    (json.dumps({"url": ""}), None, "empty or not a string"),
])
def test_secret_form_errors_never_show_the_value(aws, secret_string, json_key, match):
    name = f"cali/bad-{uuid.uuid4().hex[:6]}"
    aws["secretsmanager"].create_secret(Name=name, SecretString=secret_string)
    secret = SecretsManagerSecret(aws["secretsmanager"], name, json_key=json_key)
    with pytest.raises(SecretError, match=match) as exc:
        secret.get()
    assert WEBHOOK not in str(exc.value) and exc.value.__cause__ is None
    health = secret.healthcheck()
    assert not health.ok and WEBHOOK not in health.detail


def test_missing_secret_says_how_to_create_it(aws):
    health = SecretsManagerSecret(aws["secretsmanager"], "cali/missing").healthcheck()
    assert not health.ok and "ResourceNotFoundException" in health.detail
    assert "aws secretsmanager create-secret --name cali/missing" in health.detail
    arn = aws["secret_arn"].replace("slack-webhook", "gone")
    health = SecretsManagerSecret(aws["secretsmanager"], arn).healthcheck()
    assert not health.ok and "create-secret --name cali/gone " in health.detail


def test_secret_value_never_in_repr_str_or_log(aws, caplog):
    secret = SecretsManagerSecret(aws["secretsmanager"], SECRET)
    with caplog.at_level(logging.DEBUG, logger="cali"):
        value = secret.get()
        health = secret.healthcheck()
        logging.getLogger("cali.test").info("secret %s value %s health %s", secret, value, health)
    for text in (repr(secret), str(secret), repr(value), str(value), str(health), caplog.text):
        assert WEBHOOK not in text
    assert "**********" in caplog.text


def test_secret_cache_ttl_and_invalidate(aws):
    name = f"cali/rotating-{uuid.uuid4().hex[:6]}"
    aws["secretsmanager"].create_secret(Name=name, SecretString="https://old.example/hook")
    clock = FakeClock()
    secret = SecretsManagerSecret(aws["secretsmanager"], name, ttl_s=60, clock=clock)
    assert secret.get().get_secret_value() == "https://old.example/hook"
    aws["secretsmanager"].put_secret_value(SecretId=name, SecretString="https://new.example/hook")
    clock.advance(59)
    assert secret.get().get_secret_value() == "https://old.example/hook"  # cached
    clock.advance(2)
    assert secret.get().get_secret_value() == "https://new.example/hook"
    aws["secretsmanager"].put_secret_value(SecretId=name, SecretString="https://newer.example/hook")
    secret.invalidate()
    assert secret.get().get_secret_value() == "https://newer.example/hook"


def test_env_secret():
    ok = EnvSecret("CALI_SLACK__WEBHOOK_URL", environ={"CALI_SLACK__WEBHOOK_URL": WEBHOOK})
    assert ok.get().get_secret_value() == WEBHOOK
    assert ok.healthcheck().detail == f"found, {len(WEBHOOK)} chars"
    assert WEBHOOK not in repr(ok) and WEBHOOK not in repr(ok.get())
    missing = EnvSecret("CALI_SLACK__WEBHOOK_URL", environ={}).healthcheck()
    assert not missing.ok and "export CALI_SLACK__WEBHOOK_URL=" in missing.detail
    empty = EnvSecret("CALI_SLACK__WEBHOOK_URL", environ={"CALI_SLACK__WEBHOOK_URL": " "}).healthcheck()
    assert not empty.ok and "empty" in empty.detail
