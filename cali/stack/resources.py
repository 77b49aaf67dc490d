"""Creates the stream, bucket, tables, secret and Firehose delivery stream; each step is idempotent."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from cali.stack.aws import boto_client
from cali.stack.config import StackConfig

KINESALITE_ACCOUNT = "000000000000"  # kinesalite's default AWS_ACCOUNT_ID "0000-0000-0000"
MOTO_ACCOUNT = "123456789012"

TABLES: dict[str, dict[str, Any]] = {
    # attribute -> (key type, attribute type)
    "checkpoint_table": {"shard_key": ("HASH", "S")},
    "state_table": {"pk": ("HASH", "S"), "sk": ("RANGE", "S")},
    "outbox_table": {"pk": ("HASH", "S"), "seq": ("RANGE", "N")},
}


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def ensure_stream(cfg: StackConfig, timeout_s: float = 20.0) -> dict:
    kinesis = boto_client("kinesis", cfg.kinesis_endpoint, cfg.region, verify=cfg.kinesis_verify)
    created = False
    try:
        kinesis.create_stream(StreamName=cfg.stream, ShardCount=cfg.shards)
        created = True
    except ClientError as exc:
        if _code(exc) != "ResourceInUseException":
            raise
    deadline = time.monotonic() + timeout_s
    while True:
        summary = kinesis.describe_stream_summary(StreamName=cfg.stream)["StreamDescriptionSummary"]
        if summary["StreamStatus"] == "ACTIVE":
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"stream {cfg.stream} still {summary['StreamStatus']} after {timeout_s}s "
                               f"at {cfg.kinesis_endpoint}")
        time.sleep(0.05)
    return {"name": cfg.stream, "created": created, "status": summary["StreamStatus"],
            "open_shards": summary.get("OpenShardCount"), "arn": summary.get("StreamARN")}


def ensure_bucket(cfg: StackConfig) -> dict:
    s3 = boto_client("s3", cfg.aws_endpoint, cfg.region)
    try:  # moto, like us-east-1, answers 200 to re-creating an owned bucket: ask first
        s3.head_bucket(Bucket=cfg.bucket)
        return {"name": cfg.bucket, "created": False}
    except ClientError as exc:
        if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    kwargs: dict[str, Any] = {"Bucket": cfg.bucket}
    if cfg.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": cfg.region}
    try:
        s3.create_bucket(**kwargs)
        return {"name": cfg.bucket, "created": True}
    except ClientError as exc:
        if _code(exc) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            return {"name": cfg.bucket, "created": False}
        raise


def ensure_tables(cfg: StackConfig) -> list[dict]:
    ddb = boto_client("dynamodb", cfg.aws_endpoint, cfg.region)
    out = []
    for attr, keys in TABLES.items():
        name = getattr(cfg, attr)
        schema = [{"AttributeName": k, "KeyType": kt} for k, (kt, _) in keys.items()]
        attrs = [{"AttributeName": k, "AttributeType": at} for k, (_, at) in keys.items()]
        try:
            ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST", KeySchema=schema,
                             AttributeDefinitions=attrs)
            ddb.get_waiter("table_exists").wait(TableName=name,
                                                WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
            out.append({"name": name, "created": True})
        except ClientError as exc:
            if _code(exc) != "ResourceInUseException":
                raise
            out.append({"name": name, "created": False})
    return out


def ensure_secret(cfg: StackConfig) -> dict:
    sm = boto_client("secretsmanager", cfg.aws_endpoint, cfg.region)
    try:
        sm.create_secret(Name=cfg.secret_name, SecretString=cfg.webhook_url)
        return {"name": cfg.secret_name, "created": True}
    except ClientError as exc:
        if _code(exc) != "ResourceExistsException":
            raise
    current = sm.get_secret_value(SecretId=cfg.secret_name).get("SecretString")
    if current != cfg.webhook_url:
        sm.put_secret_value(SecretId=cfg.secret_name, SecretString=cfg.webhook_url)
        return {"name": cfg.secret_name, "created": False, "updated": True}
    return {"name": cfg.secret_name, "created": False}


def ensure_delivery_stream(cfg: StackConfig) -> dict:
    """Firehose lives in moto while the stream lives in kinesalite: moto records the source ARN but
    never reads from it, so the delivery stream documents the wiring; the archiver writes S3 itself."""
    fh = boto_client("firehose", cfg.aws_endpoint, cfg.region)
    try:
        desc = fh.describe_delivery_stream(
            DeliveryStreamName=cfg.delivery_stream)["DeliveryStreamDescription"]
        return {"name": cfg.delivery_stream, "created": False, "type": desc.get("DeliveryStreamType")}
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
    role = f"arn:aws:iam::{MOTO_ACCOUNT}:role/cali-firehose"
    s3_dest = {"RoleARN": role, "BucketARN": f"arn:aws:s3:::{cfg.bucket}", "Prefix": "firehose/",
               "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 60}}
    stream_arn = f"arn:aws:kinesis:{cfg.region}:{KINESALITE_ACCOUNT}:stream/{cfg.stream}"
    try:
        fh.create_delivery_stream(
            DeliveryStreamName=cfg.delivery_stream, DeliveryStreamType="KinesisStreamAsSource",
            KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": role},
            ExtendedS3DestinationConfiguration=s3_dest)
        return {"name": cfg.delivery_stream, "created": True, "type": "KinesisStreamAsSource",
                "source": stream_arn}
    except ClientError as exc:
        note = f"KinesisStreamAsSource rejected by moto ({_code(exc)}): created as DirectPut"
    fh.create_delivery_stream(DeliveryStreamName=cfg.delivery_stream, DeliveryStreamType="DirectPut",
                              ExtendedS3DestinationConfiguration=s3_dest)
    return {"name": cfg.delivery_stream, "created": True, "type": "DirectPut", "note": note}


def ensure_all(cfg: StackConfig) -> dict:
    return {"stream": ensure_stream(cfg), "bucket": ensure_bucket(cfg), "tables": ensure_tables(cfg),
            "secret": ensure_secret(cfg), "delivery_stream": ensure_delivery_stream(cfg)}
