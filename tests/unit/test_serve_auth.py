"""POST /analyze authentication: when a token is required, where it comes from, and how requests are checked."""

from __future__ import annotations

import pytest
from fastapi import HTTPException
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import SecretStr

from cali.serve.auth import AuthConfigError, BearerAuth, api_auth, is_loopback, resolve_token

TOKEN = "t0k-" + "e" * 28


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("LOCALHOST", True), ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("fe80::1", False),
    ("cali.internal", False), ("", False), (None, False),
])
def test_is_loopback(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_required_without_a_token_refuses_and_names_the_fix() -> None:
    with pytest.raises(AuthConfigError, match="0.0.0.0, beyond loopback.*CALI_API_TOKEN.*127.0.0.1"):
        BearerAuth(None, required=True, where="0.0.0.0")


def test_no_token_on_loopback_lets_requests_through() -> None:
    auth = BearerAuth(None, required=False, where="127.0.0.1")
    assert not auth.enabled and auth.allows(None)


@pytest.mark.parametrize(("given", "ok"), [
    (TOKEN, True), (None, False), ("", False), (TOKEN + "x", False), (TOKEN[:-1], False), (TOKEN.upper(), False),
])
def test_a_configured_token_is_checked(given: str | None, ok: bool) -> None:
    auth = BearerAuth(SecretStr(TOKEN), required=False, where="127.0.0.1")
    assert auth.enabled and auth.allows(given) is ok
    assert TOKEN not in repr(auth)


def test_token_from_env_then_secrets_manager() -> None:
    class Secret:
        def __init__(self, sid: str) -> None:
            self.sid = sid

        def get(self) -> SecretStr:
            return SecretStr(f"from-{self.sid}")

    assert resolve_token("CALI_API_TOKEN", "sid", {"CALI_API_TOKEN": f" {TOKEN} "}, Secret).get_secret_value() == TOKEN
    assert resolve_token("CALI_API_TOKEN", "sid", {}, Secret).get_secret_value() == "from-sid"
    assert resolve_token("CALI_API_TOKEN", None, {"CALI_API_TOKEN": "  "}, Secret) is None


def replica_auth(host: str | None, env: dict[str, str], require_token: bool | None = None) -> BearerAuth:
    """What the Api replica builds at start, with the proxy host it would read from Serve."""
    return api_auth(token_env="CALI_API_TOKEN", token_secret_id=None, require_token=require_token, environ=env,
                    host=lambda: host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", None])
def test_ingress_refuses_to_start_beyond_loopback_without_a_token(host: str | None) -> None:
    with pytest.raises(AuthConfigError):
        replica_auth(host, {})


def test_ingress_beyond_loopback_with_a_token_answers_401_with_a_challenge() -> None:
    from cali.serve.auth import authorize

    auth = replica_auth("0.0.0.0", {"CALI_API_TOKEN": TOKEN})
    assert auth.enabled
    authorize(auth, HTTPAuthorizationCredentials(scheme="Bearer", credentials=TOKEN))
    with pytest.raises(HTTPException) as missing:
        authorize(auth, None)
    assert missing.value.status_code == 401 and missing.value.headers == {"WWW-Authenticate": "Bearer"}
    with pytest.raises(HTTPException) as wrong:
        authorize(auth, HTTPAuthorizationCredentials(scheme="Bearer", credentials="nope"))
    assert wrong.value.headers == {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def test_ingress_on_loopback_needs_no_token_unless_forced() -> None:
    assert not replica_auth("127.0.0.1", {}).enabled
    with pytest.raises(AuthConfigError):
        replica_auth("127.0.0.1", {}, require_token=True)
    assert replica_auth("127.0.0.1", {"CALI_API_TOKEN": TOKEN}).enabled  # a token set is always checked


def test_token_never_travels_in_the_serve_args() -> None:
    from cali.serve.app import _dump
    from cali.serve.spec import ServeSpec

    args = _dump(ServeSpec())
    assert args["api"] == {"token_env": "CALI_API_TOKEN", "token_secret_id": None, "require_token": None}
    assert args["aws"]["access_key_id"] is None and args["aws"]["secret_access_key"] is None
    with pytest.raises(ValueError, match="do not belong in the Serve args"):
        ServeSpec.model_validate({"aws": {"access_key_id": "AKIA" + "X" * 16}})
