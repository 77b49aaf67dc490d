"""The daily reports in S3 (`reports/dt=YYYY-MM-DD/`): JSON for tools, HTML for people."""

from __future__ import annotations

from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from cali.core.ports import Health
from cali.sinks.s3_archive import _error


class S3Reports:
    """Puts and reads report objects under `prefix` in one bucket (the Terraform's REPORTS_BUCKET)."""

    def __init__(self, client: Any, bucket: str, prefix: str = "reports/") -> None:
        if not bucket:
            raise ValueError("S3Reports needs a bucket name")
        self._s3, self.bucket, self.prefix = client, bucket, prefix

    def key(self, day: str, name: str) -> str:
        return f"{self.prefix}dt={day}/{name}"

    def put(self, day: str, name: str, body: bytes, content_type: str) -> str:
        """PutObject of reports/dt=<day>/<name>; returns the s3:// URI."""
        key = self.key(day, name)
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise _error("PutObject", self.bucket, key, exc) from exc
        return f"s3://{self.bucket}/{key}"

    def put_json(self, day: str, name: str, doc: dict[str, Any]) -> str:
        options = orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z | orjson.OPT_SERIALIZE_NUMPY
        return self.put(day, name, orjson.dumps(doc, option=options), "application/json")

    def get_json(self, day: str, name: str) -> dict[str, Any] | None:
        """GetObject of reports/dt=<day>/<name>; None when there is no such report."""
        key = self.key(day, name)
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise _error("GetObject", self.bucket, key, exc) from exc
        except BotoCoreError as exc:
            raise _error("GetObject", self.bucket, key, exc) from exc
        return orjson.loads(body)

    def healthcheck(self) -> Health:
        """HeadBucket on the reports bucket."""
        name = f"s3-reports:{self.bucket}"
        try:
            self._s3.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            return Health(name, False, str(_error("HeadBucket", self.bucket, None, exc)))
        return Health(name, True, f"bucket s3://{self.bucket} reachable")
