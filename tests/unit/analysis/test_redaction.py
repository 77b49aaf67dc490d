"""Redaction: a table of (name, input, expected) cases, the counts, the record copy, and the known misses."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from cali.core.records import LogRecord
from cali.core.redaction import NAMES, luhn_ok, redact, redact_record

# Token-shaped test values are assembled from parts, so secret scanners do not flag this file.
OPENAI = "sk-" + "proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"
SLACK = "xoxb-" + "123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"
GHP = "ghp_" + "A" * 18 + "0123456789abcdefgh"
GH_PAT = "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"
STRIPE = "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"
GOOGLE = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
AKID = "AKIA" + "IOSFODNN7EXAMPLE"  # the example key id of the AWS documentation
ASID = "ASIA" + "Y34FZKBOKMUTVV7A"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
       + ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
SHA1 = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"
UUID = "123e4567-e89b-12d3-a456-426614174000"
KINESIS_SEQ = "49590338271490256608559692538361571095921575989136588898"


def R(name: str) -> str:
    return f"[REDACTED:{name}]"


CASES: list[tuple[str, str, str]] = [
    # --- API keys and tokens
    ("openai key", f"calling openai with {OPENAI} failed", f"calling openai with {R('openai_key')} failed"),
    ("slack bot token", f"token={SLACK}", f"token={R('slack_token')}"),
    ("github classic token", f"git clone https://{GHP}@github.com/x/y", f"git clone https://{R('github_token')}@github.com/x/y"),
    ("github fine-grained pat", f"GITHUB_TOKEN {GH_PAT}", f"GITHUB_TOKEN {R('github_token')}"),
    ("stripe live key", f"stripe.api_key set to {STRIPE}.", f"stripe.api_key set to {R('stripe_key')}."),
    ("google api key", f"maps?key={GOOGLE}&q=x", f"maps?key={R('google_api_key')}&q=x"),
    ("generic api_key kv", "GET /v1/items?api_key=abcdef123456&page=2", f"GET /v1/items?api_key={R('api_key')}&page=2"),
    ("x-api-key header", "X-Api-Key: 9b1deb4d3b7d4bad9bdd", f"X-Api-Key: {R('api_key')}"),
    ("json access_token", '{"access_token": "ya29.a0AfH6SMBx", "ok": true}',
     f'{{"access_token": "{R("api_key")}", "ok": true}}'),
    ("authorization bearer", "Authorization: Bearer abc123def456ghi789", f"Authorization: Bearer {R('auth_header')}"),
    ("authorization basic", "authorization=Basic dXNlcjpwYXNzd29yZA==", f"authorization=Basic {R('auth_header')}"),
    ("bare bearer token", "sent bearer 0a1b2c3d4e5f6a7b8c9d", f"sent bearer {R('bearer')}"),
    ("bearer jwt names the jwt", f"Authorization: Bearer {JWT}", f"Authorization: Bearer {R('jwt')}"),
    # --- AWS
    ("aws access key id", f"aws_access_key_id={AKID}", f"aws_access_key_id={R('aws_access_key_id')}"),
    ("aws session key id", f"creds {ASID} expired", f"creds {R('aws_access_key_id')} expired"),
    ("aws secret kv", f"aws_secret_access_key = {AWS_SECRET}", f"aws_secret_access_key = {R('aws_secret_key')}"),
    ("aws secret json", f'"SecretAccessKey": "{AWS_SECRET}"', f'"SecretAccessKey": "{R("aws_secret_key")}"'),
    ("aws secret wrong length still a secret kv", "secret_key=short1", f"secret_key={R('password')}"),
    # --- JWT
    ("jwt in text", f"token {JWT} rejected: expired", f"token {R('jwt')} rejected: expired"),
    ("jwt alg none", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0. bad", f"{R('jwt')} bad"),
    # --- passwords
    ("postgres dsn", "postgresql://app:s3cr3t!@db.internal:5432/orders",
     f"postgresql://app:{R('url_password')}@db.internal:5432/orders"),
    ("redis dsn without user", "redis://:hunter2@cache:6379/0", f"redis://:{R('url_password')}@cache:6379/0"),
    ("jdbc dsn", "jdbc:mysql://root:Pa55w0rd@10.0.0.5/db", f"jdbc:mysql://root:{R('url_password')}@10.0.0.5/db"),
    ("password kv", "login user=bob password=hunter2 ok", f"login user=bob password={R('password')} ok"),
    ("prefixed password kv", "DB_PASSWORD: 'x y z'", f"DB_PASSWORD: '{R('password')}'"),
    ("pwd kv in query", "/login?user=a&pwd=zz9&next=/", f"/login?user=a&pwd={R('password')}&next=/"),
    ("secret kv", "client secret=abc.def-ghi;", f"client secret={R('password')};"),
    ("client_secret json", '{"client_secret":"c0ffee"}', f'{{"client_secret":"{R("api_key")}"}}'),
    ("private key block", "key: -----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- loaded",
     f"key: {R('private_key')} loaded"),
    # --- personal data
    ("email", "reset mail to jane.doe+ops@example.co.uk failed", f"reset mail to {R('email')} failed"),
    ("card visa", "charge 4111111111111111 declined", f"charge {R('card')} declined"),
    ("card with spaces", "pan=5555 5555 5555 4444.", f"pan={R('card')}."),
    ("card amex dashes", "card 3782-822463-10005 ok", f"card {R('card')} ok"),
    # --- must stay
    ("card failing luhn stays", "order 4111111111111112 shipped", "order 4111111111111112 shipped"),
    ("sha256 stays", f"digest sha256:{SHA256}", f"digest sha256:{SHA256}"),
    ("sha1 stays", f"commit {SHA1} deployed", f"commit {SHA1} deployed"),
    ("uuid stays", f"request {UUID} failed", f"request {UUID} failed"),
    ("kinesis sequence stays", f"checkpoint at {KINESIS_SEQ}", f"checkpoint at {KINESIS_SEQ}"),
    ("iso timestamp stays", "2026-11-21T08:02:11.457Z ERROR x", "2026-11-21T08:02:11.457Z ERROR x"),
    ("epoch ms stays", "ts=1764230400000 ns=1764230400000000000", "ts=1764230400000 ns=1764230400000000000"),
    ("compact timestamp stays", "batch 20261121080211457 done", "batch 20261121080211457 done"),
    ("password failure wording stays", 'FATAL: password authentication failed for user "app"',
     'FATAL: password authentication failed for user "app"'),
    ("bearer wording stays", "Bearer authentication failed: token expired",
     "Bearer authentication failed: token expired"),
    ("url with port stays", "GET http://orders-api:8080/v1/x@y", "GET http://orders-api:8080/v1/x@y"),
    ("dsn without password stays", "postgresql://db.internal:5432/orders", "postgresql://db.internal:5432/orders"),
    ("ip kept by default", "connect to 10.1.2.3:5432 refused", "connect to 10.1.2.3:5432 refused"),
    ("sk- inside a word stays", "task-sk-abcdefghijklmnopqrstuvwx", "task-sk-abcdefghijklmnopqrstuvwx"),
    ("java exception stays", "java.sql.SQLException: Connection is not available, request timed out after 30000ms.",
     "java.sql.SQLException: Connection is not available, request timed out after 30000ms."),
    ("k8s pod name stays", "pod orders-api-7d9f8b6c5-x2x9z OOMKilled", "pod orders-api-7d9f8b6c5-x2x9z OOMKilled"),
]

IP_CASES: list[tuple[str, str, str]] = [
    ("ipv4 with port", "connect to 10.1.2.3:5432 refused", f"connect to {R('ip')}:5432 refused"),
    ("ipv4 end of sentence", "from 192.168.0.1.", f"from {R('ip')}."),
    ("ipv6 full", "peer 2001:0db8:85a3:0000:0000:8a2e:0370:7334 reset", f"peer {R('ipv6')} reset"),
    ("ipv6 compressed", "bind fe80::1ff:fe23:4567:890a failed", f"bind {R('ipv6')} failed"),
    ("time is not ipv6", "at 08:02:11 x", "at 08:02:11 x"),
    ("not an ip: 256", "v 256.1.1.1", "v 256.1.1.1"),
]

# Known misses: what the table does not catch, or catches when it should not. Each line is asserted
# as it behaves today, so a fix shows up as a failing test to move into CASES.
KNOWN_MISSES: list[tuple[str, str, str]] = [
    ("unencoded @ in a dsn password leaks its tail", "redis://u:p@ss@h", f"redis://u:{R('url_password')}@ss@h"),
    ("bare 40-char aws secret without a key name", f"creds {AWS_SECRET}", f"creds {AWS_SECRET}"),
    ("password in prose", "the password is hunter2", "the password is hunter2"),
    ("kv over-redacts a non-secret word", "invalid password: too short", f"invalid password: {R('password')} short"),
    ("a 16-digit luhn-valid order id looks like a card", "order 4242424242424242", f"order {R('card')}"),
]


def test_names_are_unique_and_documented() -> None:
    assert len(NAMES) == len(set(NAMES))


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_redact(name: str, text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(("name", "text", "expected"), IP_CASES, ids=[c[0] for c in IP_CASES])
def test_redact_ips_when_asked(name: str, text: str, expected: str) -> None:
    assert redact(text, ips=True) == expected


@pytest.mark.parametrize(("name", "text", "expected"), KNOWN_MISSES, ids=[c[0] for c in KNOWN_MISSES])
def test_known_misses(name: str, text: str, expected: str) -> None:
    assert redact(text) == expected


def test_version_number_is_taken_for_an_ip() -> None:  # a known miss of the optional ip pattern
    assert redact("upgraded to 1.2.3.4", ips=True) == f"upgraded to {R('ip')}"


def test_redaction_is_idempotent() -> None:
    for _, text, _ in CASES + IP_CASES:
        once = redact(text, ips=True)
        assert redact(once, ips=True) == once


def test_counts_per_name() -> None:
    counts: Counter[str] = Counter()
    text = f"{AKID} {AKID} a@b.io user:pw postgres://u:p@h 4111111111111111 4111111111111112"
    redact(text, counts=counts)
    assert counts == Counter({"aws_access_key_id": 2, "email": 1, "url_password": 1, "card": 1})


def test_luhn() -> None:
    assert luhn_ok("79927398713")
    assert not luhn_ok("79927398710")


def test_redact_record_copies_with_fields_redacted() -> None:
    rec = LogRecord(
        timestamp=datetime(2026, 11, 21, 8, 2, 11, tzinfo=UTC), level="ERROR", service="orders-api",
        message=f"login failed for jane@example.com key {AKID}",
        stack="Caused by: x\n  at postgresql://app:pw1@db/orders", host="10.0.0.7",
        attributes={"dsn": "mysql://a:b@c/d", "n": 3},
    )
    counts: Counter[str] = Counter()
    out = redact_record(rec, ips=True, counts=counts)
    assert out.message == f"login failed for {R('email')} key {R('aws_access_key_id')}"
    assert out.stack is not None and "pw1" not in out.stack
    assert out.host == R("ip")
    assert out.attributes == {"dsn": f"mysql://a:{R('url_password')}@c/d", "n": 3}
    assert out.event_id == rec.event_id
    assert rec.message.startswith("login failed for jane@")  # the original is untouched
    assert counts["url_password"] == 2
