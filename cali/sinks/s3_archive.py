"""ArchiveSink on Amazon S3: one gzip JSON-lines object per batch, integrity-checked by S3 (Content-MD5)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cali.core.ports import Health

CONTENT_TYPE = "application/x-ndjson"
CONTENT_ENCODING = "gzip"

# What the user can do about the S3 error codes we expect to meet.
_HINTS = {
    "NoSuchBucket": "create it (aws s3 mb s3://{bucket}) or fix the archive bucket name in settings",
    "AccessDenied": "grant s3:PutObject, s3:GetObject, s3:ListBucket on arn:aws:s3:::{bucket} to these "
                    "credentials",
    "InvalidAccessKeyId": "check the AWS credentials (AWS_ACCESS_KEY_ID / profile) used by the pipeline",
    "SignatureDoesNotMatch": "check the AWS secret key and that the region/endpoint match the bucket",
    "BadDigest": "the body was corrupted in transit (Content-MD5 mismatch); the write is safe to retry",
    "InvalidDigest": "the Content-MD5 header was malformed; this is a bug in the S3 archive adapter",
    "NoSuchKey": "the object does not exist; list the prefix to see what is there",
    "SlowDown": "S3 is throttling this prefix; retry with backoff",
}


class ArchiveError(Exception):
    """An S3 call on the archive failed; the message names the call, bucket/key, AWS code and a fix."""

    def __init__(self, operation: str, bucket: str, key: str | None, code: str, message: str, hint: str):
        self.operation, self.bucket, self.key, self.code = operation, bucket, key, code
        where = f"s3://{bucket}/{key}" if key is not None else f"s3://{bucket}"
        super().__init__(f"S3 {operation} {where} failed: {code}: {message}. {hint}")


def _error(operation: str, bucket: str, key: str | None, exc: Exception) -> ArchiveError:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?"))
        message = str(err.get("Message") or exc)
        if code == "404" and operation == "HeadBucket":
            code = "NoSuchBucket"
        elif code == "403":
            code = "AccessDenied"
        hint = _HINTS.get(code, "see the AWS error code in the S3 documentation; retrying may help")
    else:  # BotoCoreError: no HTTP answer at all (endpoint down, DNS, TLS, timeout)
        code, message = type(exc).__name__, str(exc)
        hint = "check that the S3 endpoint is reachable (for the local stack: is moto server running?)"
    return ArchiveError(operation, bucket, key, code, message, hint.format(bucket=bucket))


def content_md5(body: bytes) -> str:
    # MD5 here is S3's transport integrity check, not a security primitive.
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode("ascii")


class S3Archive:
    """Writes archive objects to one bucket. `client` is a boto3 S3 client built by the composition root."""

    def __init__(self, client: Any, bucket: str) -> None:
        if not bucket:
            raise ValueError("S3Archive needs a bucket name")
        self._s3 = client
        self.bucket = bucket

    def __repr__(self) -> str:
        return f"S3Archive(bucket={self.bucket!r})"

    def put_batch(self, key: str, body: bytes) -> None:
        """PutObject with Content-MD5, so S3 rejects a corrupted body; returns once S3 has stored it."""
        try:
            self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentMD5=content_md5(body),
                ContentType=CONTENT_TYPE, ContentEncoding=CONTENT_ENCODING,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _error("PutObject", self.bucket, key, exc) from exc

    def get(self, key: str) -> bytes:
        """GetObject; returns the stored bytes as written (still gzip: boto3 does not decode)."""
        try:
            resp = self._s3.get_object(Bucket=self.bucket, Key=key)
            return resp["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise _error("GetObject", self.bucket, key, exc) from exc

    def list_keys(self, prefix: str = "") -> list[str]:
        """ListObjectsV2 over all pages; keys in S3's (lexicographic) order."""
        keys: list[str] = []
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        except (ClientError, BotoCoreError) as exc:
            raise _error("ListObjectsV2", self.bucket, prefix or None, exc) from exc
        return keys

    def healthcheck(self) -> Health:
        """HeadBucket: the bucket exists and these credentials can reach it."""
        name = f"s3-archive:{self.bucket}"
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            return Health(name, False, str(_error("HeadBucket", self.bucket, None, exc)))
        return Health(name, True, f"bucket s3://{self.bucket} reachable")


__all__ = ["ArchiveError", "S3Archive", "content_md5"]
