"""A secret from AWS Secrets Manager (GetSecretValue), cached for a TTL, returned as a SecretStr."""

from __future__ import annotations

import json
import threading
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from cali.core.clock import SystemClock
from cali.core.ports import Clock, Health
from cali.secrets import SecretError

# Keys tried, in order, when the secret is a JSON object and no json_key is configured.
DEFAULT_JSON_KEYS = ("url", "webhook_url")

_HINTS = {
    "ResourceNotFoundException": "create it with aws secretsmanager create-secret --name {name} "
                                 "--secret-string '<value>' (or fix the name/ARN and region in settings)",
    "AccessDeniedException": "grant secretsmanager:GetSecretValue on {sid} to these credentials "
                             "(and kms:Decrypt on its KMS key)",
    "DecryptionFailure": "Secrets Manager could not decrypt it: grant kms:Decrypt on the secret's KMS key",
    "InvalidRequestException": "the secret may be scheduled for deletion: aws secretsmanager restore-secret "
                               "--secret-id {sid}",
    "UnrecognizedClientException": "check the AWS credentials used by the pipeline",
    "InvalidSignatureException": "check the AWS secret key and region",
}


def _name_of(secret_id: str) -> str:
    # arn:aws:secretsmanager:region:acct:secret:NAME-AbCdEf: the create-secret hint wants NAME
    # (a full ARN ends in "-" and 6 random characters; a partial ARN does not).
    if secret_id.startswith("arn:"):
        tail = secret_id.split(":secret:", 1)[-1]
        return tail[:-7] if len(tail) > 7 and tail[-7] == "-" and tail[-6:].isalnum() else tail
    return secret_id


class SecretsManagerSecret:
    """Secret `secret_id` (name or ARN). `client` is a boto3 secretsmanager client.

    SecretString may be the value itself or a JSON object; for JSON, the value is under `json_key`, or
    under the first of "url", "webhook_url" present when no key is configured. The value is cached for
    `ttl_s` seconds (0 disables the cache); `invalidate()` forces the next get() to fetch it again,
    e.g. after the webhook was rotated and a send was refused.
    """

    def __init__(self, client: Any, secret_id: str, *, json_key: str | None = None, ttl_s: float = 300.0,
                 clock: Clock | None = None) -> None:
        if not secret_id:
            raise ValueError("SecretsManagerSecret needs a secret name or ARN")
        self._sm = client
        self.secret_id = secret_id
        self.json_key = json_key
        self.ttl_s = ttl_s
        self._clock = clock or SystemClock()
        self._cached: SecretStr | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SecretsManagerSecret(secret_id={self.secret_id!r}, json_key={self.json_key!r})"

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def get(self) -> SecretStr:
        """GetSecretValue, or the cached value while younger than ttl_s."""
        with self._lock:
            now = self._clock.monotonic()
            if self._cached is not None and now - self._fetched_at < self.ttl_s:
                return self._cached
            value = self._fetch()
            self._cached, self._fetched_at = value, now
            return value

    def _fetch(self) -> SecretStr:
        try:
            resp = self._sm.get_secret_value(SecretId=self.secret_id)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            code, message = err.get("Code", "?"), err.get("Message", "")
            hint = _HINTS.get(code, "see the error code in the Secrets Manager documentation")
            raise SecretError(f"Secrets Manager GetSecretValue {self.secret_id!r} failed: {code}: {message}. "
                              + hint.format(name=_name_of(self.secret_id), sid=self.secret_id)) from exc
        except BotoCoreError as exc:
            raise SecretError(f"Secrets Manager GetSecretValue {self.secret_id!r} failed: "
                              f"{type(exc).__name__}: {exc}. Check that the endpoint is reachable") from exc
        raw = resp.get("SecretString")
        if raw is None:
            raise SecretError(f"secret {self.secret_id!r} has only SecretBinary; store the value as "
                              "SecretString (aws secretsmanager put-secret-value --secret-string ...)")
        return SecretStr(self._pick(raw))

    def _pick(self, raw: str) -> str:
        # Exceptions here are raised `from None` and name only JSON keys: a JSONDecodeError carries the
        # whole document in `.doc`, which a traceback logger could print.
        text = raw.strip()
        doc: Any = None
        if text.startswith("{"):
            try:
                doc = json.loads(text)
            except ValueError:
                raise SecretError(f"secret {self.secret_id!r} starts with '{{' but is not valid JSON; "
                                  "store the plain value or a JSON object") from None
        if not isinstance(doc, dict):
            if self.json_key is not None:
                raise SecretError(f"secret {self.secret_id!r} is a plain string but json_key="
                                  f"{self.json_key!r} is configured: store JSON or unset json_key")
            if not text:
                raise SecretError(f"secret {self.secret_id!r} is empty")
            return text
        keys = (self.json_key,) if self.json_key is not None else DEFAULT_JSON_KEYS
        for key in keys:
            if key in doc:
                value = doc[key]
                if not isinstance(value, str) or not value.strip():
                    raise SecretError(f"secret {self.secret_id!r}: JSON key {key!r} is empty or not a string")
                return value.strip()
        wanted = " or ".join(map(repr, keys))
        raise SecretError(f"secret {self.secret_id!r} is a JSON object without {wanted} (its keys: "
                          f"{sorted(map(str, doc))}); set json_key to the key holding the value")

    def healthcheck(self) -> Health:
        """GetSecretValue (fresh, not cached): reports the length, never the value."""
        name = f"secretsmanager:{self.secret_id}"
        try:
            value = self._fetch()
        except SecretError as exc:
            return Health(name, False, str(exc))
        with self._lock:
            self._cached, self._fetched_at = value, self._clock.monotonic()
        return Health(name, True, f"found, {len(value.get_secret_value())} chars")


__all__ = ["DEFAULT_JSON_KEYS", "SecretsManagerSecret"]
