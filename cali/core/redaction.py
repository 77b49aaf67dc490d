"""Named regexes that replace secrets and personal data in log text by `[REDACTED:<name>]`."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from cali.core.records import LogRecord

_TOKEN = "[REDACTED:{}]"
_NOT_DONE = r"(?![\"']?\[REDACTED:)"  # a value already replaced by an earlier pattern is not redacted twice
_L = r"(?<![A-Za-z0-9_-])"  # a token starts at a word edge ("task-xoxb" is not a Slack token)
_R = r"(?![A-Za-z0-9_-])"
# A key=value pair: the key may be quoted (JSON) and prefixed (db_password, aws_secret_access_key); the
# value is quoted or runs to the next separator. Group 1 keeps the key and separator, group 2 is the value.
_VALUE = r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s\"'&,;)}\]]+)"


def _kv(keys: str) -> str:
    return r"(?i)((?<![A-Za-z0-9])(?:" + keys + r")[\"']?\s*[:=]\s*)" + _NOT_DONE + _VALUE


# Order matters: each pattern runs over the output of the ones before it, so shapes that name the
# secret (a JWT, a GitHub token) come before the generic key=value pairs, which then skip them.
_TABLE: list[tuple[str, str]] = [
    ("private_key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    # header.payload.signature, both JSON parts base64url of "{"; alg=none tokens have no signature
    ("jwt", r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    ("openai_key", _L + r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}" + _R),
    ("slack_token", _L + r"xox[baprs]-[A-Za-z0-9-]{10,}" + _R),
    ("github_token", _L + r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})" + _R),
    ("stripe_key", _L + r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}" + _R),
    ("google_api_key", _L + r"AIza[0-9A-Za-z_-]{35}" + _R),
    ("aws_access_key_id", r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    # 40 characters of base64 alone look like a sha1 or a git hash: only after a key name that says so
    ("aws_secret_key", r"(?i)((?:aws[_.-]?)?secret[_.-]?(?:access[_.-]?)?key[\"']?\s*[:=]\s*[\"']?)"
                       r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
    # scheme://user:PASSWORD@host: user and host stay, they say which account and which server
    ("url_password", r"([a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@\[\]]*:)" + _NOT_DONE + r"([^\s@/]+)(?=@)"),
    ("auth_header", r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token|digest)\s+)?+)"
                    + _NOT_DONE + r"([^\s\"',;]+)"),
    # a bare "Bearer <token>": the token must hold a digit, so "Bearer authentication failed" stays
    ("bearer", r"(?i)(\bbearer\s+)" + _NOT_DONE + r"(?=[A-Za-z._~+/-]*\d)([A-Za-z0-9._~+/-]{8,}=*)"),
    ("api_key", _kv(r"[a-z0-9_.-]*api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|auth[_-]?token"
                    r"|id[_-]?token|client[_-]?secret")),
    ("password", _kv(r"(?:[a-z0-9]+[_.-])*(?:password|passwd|pwd|passphrase|secret"
                     r"|secret[_-]?(?:access[_-]?)?key|private[_-]?key)")),
    ("email", r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"),
    # 13 to 19 digits, single spaces or dashes between, issuer prefix 22-27 or 3-6 (epoch ms and ns start
    # with 1, compact timestamps with 19 or 20); the Luhn check below drops the rest
    ("card", r"(?<![\d.-])(?:2[2-7]|[3-6]\d)(?:[ -]?\d){11,17}(?![\d-]|\.\d)"),
]
_IP_TABLE: list[tuple[str, str]] = [
    ("ip", r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
           r"(?!\.?\d)"),
    ("ipv6", r"(?<![\w:])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
             r"|(?:[0-9A-Fa-f]{1,4}:){1,6}(?::[0-9A-Fa-f]{1,4}){1,6})(?![\w:])"),
]
PATTERNS: list[tuple[str, re.Pattern[str]]] = [(n, re.compile(rx)) for n, rx in _TABLE]
IP_PATTERNS: list[tuple[str, re.Pattern[str]]] = [(n, re.compile(rx)) for n, rx in _IP_TABLE]
NAMES: tuple[str, ...] = tuple(n for n, _ in PATTERNS + IP_PATTERNS)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _replacer(name: str, hits: list[int]) -> Callable[[re.Match[str]], str]:
    token = _TOKEN.format(name)

    def replace(m: re.Match[str]) -> str:
        if name == "card":
            digits = re.sub(r"\D", "", m.group(0))
            if not (13 <= len(digits) <= 19 and luhn_ok(digits)):
                return m.group(0)
        hits[0] += 1
        if m.re.groups == 0:
            return token
        # Keyed patterns keep the key (group 1); a quoted value keeps its quotes so JSON stays JSON.
        value = m.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            return m.group(1) + value[0] + token + value[0]
        return m.group(1) + token

    return replace


def redact(text: str, *, ips: bool = False, counts: Counter[str] | None = None) -> str:
    """Replaces each secret or personal datum by `[REDACTED:<name>]`; adds hits per name to `counts`."""
    if not text:
        return text
    table = PATTERNS + IP_PATTERNS if ips else PATTERNS
    for name, rx in table:
        hits = [0]
        text = rx.sub(_replacer(name, hits), text)
        if hits[0] and counts is not None:
            counts[name] += hits[0]
    return text


def redact_record(record: LogRecord, *, ips: bool = False, counts: Counter[str] | None = None) -> LogRecord:
    """A copy with message, stack, host and string attributes redacted; event_id stays, so does identity."""
    def r(value: str | None) -> str | None:
        return None if value is None else redact(value, ips=ips, counts=counts)

    attributes = {k: r(v) if isinstance(v, str) else v for k, v in record.attributes.items()}
    return record.model_copy(update={
        "message": r(record.message),
        "stack": r(record.stack),
        "host": r(record.host),
        "attributes": attributes,
    })


__all__ = ["IP_PATTERNS", "NAMES", "PATTERNS", "luhn_ok", "redact", "redact_record"]
