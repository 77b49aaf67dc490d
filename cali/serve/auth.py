"""Bearer-token check of the analysis HTTP API: required whenever the Serve HTTP proxy binds beyond loopback.

The token is a secret: it is read inside the Api replica from an environment variable or an AWS
Secrets Manager secret, never passed in Serve args or Ray actor arguments, never logged. Requests are
checked in constant time (both sides are hashed first, so the comparison does not leak the length).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import HTTPException
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import SecretStr

log = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class AuthConfigError(RuntimeError):
    """The API would listen beyond loopback without a token: the replica refuses to start."""


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 and localhost; anything else (0.0.0.0, ::, a LAN address, unknown) is not."""
    if not host:
        return False
    host = host.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def proxy_host() -> str | None:
    """The host the Serve HTTP proxy binds, from the Serve controller's HTTP options; None if unknown.

    Ray Serve has no public API for it; the controller client it uses for `serve.status()` holds it.
    """
    try:
        from ray.serve.context import _get_global_client

        return str(_get_global_client().http_config.host)
    except Exception as exc:  # unknown is treated as "beyond loopback": the token is then required
        log.warning("could not read the Serve HTTP proxy's host (%s: %s); requiring a bearer token",
                    type(exc).__name__, exc)
        return None


def resolve_token(env_name: str | None, secret_id: str | None, environ: Mapping[str, str],
                  secrets_manager: Callable[[str], Any] | None = None) -> SecretStr | None:
    """The token from `environ[env_name]`, else from Secrets Manager (`secrets_manager(secret_id).get()`)."""
    value = environ.get(env_name or "", "").strip()
    if value:
        return SecretStr(value)
    if secret_id and secrets_manager is not None:
        secret = secrets_manager(secret_id).get()
        value = (secret.get_secret_value() if isinstance(secret, SecretStr) else str(secret)).strip()
        return SecretStr(value) if value else None
    return None


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


class BearerAuth:
    """Checks `Authorization: Bearer <token>` when a token is configured; refuses to exist when a token is
    required and none is configured."""

    def __init__(self, token: SecretStr | None, *, required: bool, where: str) -> None:
        if required and token is None:
            raise AuthConfigError(
                f"the analysis API would listen on {where}, beyond loopback, without authentication: set the "
                "bearer token in the Api replica's environment (api.token_env, default CALI_API_TOKEN) "
                "or name a Secrets Manager secret (api.token_secret_id), or bind the HTTP proxy to 127.0.0.1")
        self._digest = _digest(token.get_secret_value()) if token is not None else None
        self.required = required

    @property
    def enabled(self) -> bool:
        return self._digest is not None

    def allows(self, token: str | None) -> bool:
        """True when no token is configured, or `token` equals it (constant time)."""
        if self._digest is None:
            return True
        return token is not None and hmac.compare_digest(_digest(token), self._digest)

    def __repr__(self) -> str:
        return f"BearerAuth(enabled={self.enabled}, required={self.required})"


def api_auth(*, token_env: str | None, token_secret_id: str | None, require_token: bool | None,
             environ: Mapping[str, str], secrets_manager: Callable[[str], Any] | None = None,
             host: Callable[[], str | None] = proxy_host) -> BearerAuth:
    """The Api replica's check: a token is required when `require_token` says so or, when it is None, when
    the HTTP proxy binds beyond loopback (an unknown host counts as beyond)."""
    where = host()
    required = require_token if require_token is not None else not is_loopback(where)
    token = resolve_token(token_env, token_secret_id, environ, secrets_manager)
    auth = BearerAuth(token, required=required, where=where or "an unknown host")
    log.info("analysis API: HTTP proxy on %s, bearer token %s", where,
             "checked" if auth.enabled else "not configured (loopback only)")
    return auth


def authorize(auth: BearerAuth, creds: HTTPAuthorizationCredentials | None) -> None:
    """Raises HTTP 401 with a Bearer challenge unless `auth` allows the request's token."""
    if auth.allows(creds.credentials if creds is not None else None):
        return
    # RFC 6750: a missing token gets the bare challenge, a wrong one says invalid_token.
    challenge = "Bearer" if creds is None else 'Bearer error="invalid_token"'
    raise HTTPException(status_code=401, detail="a valid bearer token is required",
                        headers={"WWW-Authenticate": challenge})


def secrets_manager(secret_id: str, aws: dict[str, Any]) -> Any:
    """SecretsManagerSecret for the API token, built in the replica (credentials from its environment)."""
    from cali.bootstrap import aws_client
    from cali.config import AwsSettings, Settings
    from cali.secrets.aws import SecretsManagerSecret

    settings = Settings.model_construct(aws=AwsSettings.model_validate(aws))
    return SecretsManagerSecret(aws_client(settings, "secretsmanager"), secret_id)  # SecretString: the token


__all__ = ["AuthConfigError", "BearerAuth", "api_auth", "authorize", "is_loopback", "proxy_host", "resolve_token",
           "secrets_manager"]
