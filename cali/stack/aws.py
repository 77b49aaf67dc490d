"""boto3 clients for the local stack (or real AWS): test credentials, short timeouts, bounded retries."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

TEST_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def boto_client(service: str, endpoint: str | None, region: str, *, verify: str | bool = True,
                credentials: dict[str, str] | None = None, connect_timeout: float = 3.0,
                read_timeout: float = 10.0, max_attempts: int = 3) -> Any:
    """A botocore client; `endpoint=None` means real AWS with the default credential chain."""
    config = Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                    retries={"total_max_attempts": max_attempts, "mode": "standard"},
                    s3={"addressing_style": "path"})
    creds = credentials if credentials is not None else (TEST_CREDENTIALS if endpoint else {})
    session = boto3.session.Session(region_name=region, **creds)
    return session.client(service, endpoint_url=endpoint, verify=verify, config=config)
