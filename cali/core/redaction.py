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
# The value of a token or session id: quoted, or 6+ URL-safe/base64 characters not followed by a bracket,
# so object dumps such as Android's "token=Token{a64f992 ...}" stay.
_TOKEN_VALUE = r"(\"[^\"\n]*\"|'[^'\n]*'|[A-Za-z0-9._~+/%-]{6,}+=*(?![{(\[]))"


def _kv(keys: str) -> str:
    return r"(?i)((?<![A-Za-z0-9])(?:" + keys + r")[\"']?\s*[:=]\s*)" + _NOT_DONE + _VALUE


# Order matters: each pattern runs over the output of the ones before it, so shapes that name the
# secret (a JWT, a GitHub token) come before the generic key=value pairs, which then skip them.
# Each row is (name, regex, triggers): the regex only runs when the case-folded text holds one of the
# triggers, literal strings every match contains (a test checks it). Most log lines hold none of them,
# so most patterns cost one substring search instead of a regex scan; () means "always run".
_TABLE: list[tuple[str, str, tuple[str, ...]]] = [
    ("private_key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----", ("private key",)),
    # header.payload.signature, both JSON parts base64url of "{"; alg=none tokens have no signature
    ("jwt", r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*", ("eyj",)),
    # the path is the credential (T<team>/B<bot>/<secret>); the host stays to say what it was
    ("slack_webhook", r"(?i)(hooks\.slack\.com/(?:services|workflows|triggers)/)([A-Za-z0-9/_-]+)",
     ("hooks.slack.com",)),
    ("openai_key", _L + r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}" + _R, ("sk-",)),
    ("slack_token", _L + r"xox[baprs]-[A-Za-z0-9-]{10,}" + _R, ("xox",)),
    ("github_token", _L + r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})" + _R,
     ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")),
    # GitLab's prefixed tokens (personal/project/group, deploy, runner, pipeline trigger, feed, SCIM, incoming
    # mail, agent, CI job, OAuth secret, feature flags, workspace) and the legacy runner registration token
    ("gitlab_token", _L + r"(?:gl(?:pat|dt|rt|ptt|ft|soat|imt|agent|cbt|oas|ffct|wt)-[A-Za-z0-9_-]{20,}"
                     r"(?:\.[A-Za-z0-9_-]+)*|GR1348941[A-Za-z0-9_-]{20,})" + _R,
     ("glpat-", "gldt-", "glrt-", "glptt-", "glft-", "glsoat-", "glimt-", "glagent-", "glcbt-", "gloas-",
      "glffct-", "glwt-", "gr1348941")),
    ("npm_token", _L + r"npm_[A-Za-z0-9]{36}" + _R, ("npm_",)),
    # hf_ + 34 random letters and digits; the upper-case letter keeps snake_case names such as
    # hf_model_cache_directory_for_tests out (they also break on the "_")
    ("huggingface_token", _L + r"hf_(?=[a-z0-9]*[A-Z])[A-Za-z0-9]{30,}" + _R, ("hf_",)),
    ("stripe_key", _L + r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}" + _R, ("_live_", "_test_")),
    ("google_api_key", _L + r"AIza[0-9A-Za-z_-]{35}" + _R, ("aiza",)),
    ("aws_access_key_id", r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])", ("akia", "asia")),
    # 40 characters of base64 alone look like a sha1 or a git hash: only after a key name that says so
    ("aws_secret_key", r"(?i)((?:aws[_.-]?)?secret[_.-]?(?:access[_.-]?)?key[\"']?\s*[:=]\s*[\"']?)"
                       r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])", ("secret",)),
    # STS session tokens and SigV4 signatures, as headers (X-Amz-...: v), query parameters (X-Amz-...=v, in
    # presigned URLs) and keys (aws_session_token=, "SessionToken": "..."); 16+ characters, so that
    # "Signature=invalid" stays
    ("aws_session_token", r"(?i)((?<![A-Za-z0-9])(?:x-amz-security-token|(?:aws[_-]?)?session[_-]?token)"
                          r"[\"']?\s*[:=]\s*[\"']?)" + _NOT_DONE + r"([A-Za-z0-9%+/=_-]{16,})",
     ("security-token", "sessiontoken", "session_token", "session-token")),
    ("aws_signature", r"(?i)((?<![A-Za-z0-9])(?:x-amz-)?signature[\"']?\s*[:=]\s*[\"']?)" + _NOT_DONE
                      + r"([A-Za-z0-9%+/=_-]{16,})", ("signature",)),
    # Azure storage / Service Bus connection strings (AccountKey=, SharedAccessKey=) and SAS query strings
    ("azure_key", _kv(r"account[_-]?key|shared[_-]?access[_-]?key"),
     ("accountkey", "account_key", "account-key", "sharedaccess", "shared_access", "shared-access")),
    ("azure_sas", r"(?i)((?<![A-Za-z0-9_-])sig=)" + _NOT_DONE + r"([A-Za-z0-9%+/=_-]{16,})", ("sig=",)),
    # scheme://user:PASSWORD@host: user and host stay, they say which account and which server
    ("url_password", r"([a-zA-Z][a-zA-Z0-9+.-]{1,20}://[^\s:/@\[\]]*:)" + _NOT_DONE + r"([^\s@/]+)(?=@)",
     ("://",)),
    # mysql -u root -pS3cret (the password glued to -p; "-p" alone prompts). Case-sensitive: -P is the port.
    ("mysql_password", r"((?i:\b(?:mysql|mysqldump|mysqladmin|mysqlimport|mysqlcheck|mysqlsh|mariadb"
                       r"(?:-dump|-admin)?)\b)[^\n|;&]*?\s-p)" + _NOT_DONE + r"(\"[^\"\n]*\"|'[^'\n]*'|[^\s\"']+)",
     ("mysql", "mariadb")),
    ("auth_header", r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token|digest)\s+)?+)"
                    + _NOT_DONE + r"([^\s\"',;]+)", ("authorization",)),
    # a bare "Bearer <token>": the token must hold a digit, so "Bearer authentication failed" stays
    ("bearer", r"(?i)(\bbearer\s+)" + _NOT_DONE + r"(?=[A-Za-z._~+/-]*\d)([A-Za-z0-9._~+/-]{8,}=*)", ("bearer",)),
    # Cookie / Set-Cookie: the name=value pairs (and attributes) after the header name. A pair is needed,
    # so "Set-Cookie header missing" and "cookie: disabled" stay.
    ("cookie", r"(?i)((?<![A-Za-z0-9])(?:set-)?cookie[\"']?\s*[:=]\s*[\"']?)" + _NOT_DONE
               + r"([^\s=;\"',]+=[^\s;\"']*(?:;\s*[^\s=;\"']+(?:=[^\s;\"']*)?)*)", ("cookie",)),
    # session ids by name (JSESSIONID, PHPSESSID, connect.sid, ASP.NET_SessionId, laravel_session, sid...):
    # after "=" or as a quoted JSON key, never after a bare "session:", which starts prose too often
    ("session_id", r"(?i)((?<![A-Za-z0-9_.-])(?:[a-z0-9_.]*[_.-])?(?:j?sessionid|phpsessid|sessid"
                   r"|session(?:[_-]?(?:id|key))?|sid)(?:\s*=\s*|[\"']\s*:\s*))" + _NOT_DONE + _TOKEN_VALUE,
     ("sess", "sid")),
    ("api_key", _kv(r"[a-z0-9_.-]*api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|auth[_-]?token"
                    r"|id[_-]?token|client[_-]?secret"), ("key", "token", "secret")),
    # any other "...token=" (token=, csrf_token=, _authToken=), a quoted JSON key, or an X-...-Token header;
    # "token expired" and max_tokens=256 stay
    ("token", r"(?i)((?<![A-Za-z0-9])(?:[a-z0-9_.-]*token(?:\s*=\s*|[\"']\s*:\s*)|x-[a-z0-9-]*token\s*:\s*))"
              + _NOT_DONE + _TOKEN_VALUE, ("token",)),
    ("password", _kv(r"(?:[a-z0-9]+[_.-])*(?:password|passwd|pwd|passphrase|secret"
                     r"|secret[_-]?(?:access[_-]?)?key|private[_-]?key)|pgpassword"),
     ("pass", "pwd", "secret", "private")),
    ("email", r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])", ("@",)),
    # 13 to 19 digits, issuer prefix 22-27 or 3-6 (epoch ms and ns start with 1, compact timestamps with
    # 19 or 20), standing alone (HDFS's blk_5165786360127153975 is an id), either unbroken or grouped as
    # cards print them (4-4-4-4, 4-4-4-4-3, Amex 4-6-5), so runs of unrelated numbers ("7024 5015 150454
    # 240") stay; the Luhn check below drops the rest. The first digit comes before the look-behind, so
    # the regex engine skips ahead to digits instead of testing every position.
    ("card", r"(?:2(?<![\w.-]2)[2-7]|[3-6](?<![\w.-][3-6])\d)(?:\d{11,17}|\d\d([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?"
             r"|\d\d([ -])\d{6}\2\d{5})(?![\w-]|\.\d)", ()),
]
_IP_TABLE: list[tuple[str, str, tuple[str, ...]]] = [
    ("ip", r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
           r"(?!\.?\d)", (".",)),
    ("ipv6", r"(?<![\w:])(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}"
             r"|(?:[0-9A-Fa-f]{1,4}:){1,6}(?::[0-9A-Fa-f]{1,4}){1,6})(?![\w:])", (":",)),
]
Pattern = tuple[str, re.Pattern[str], tuple[str, ...]]
PATTERNS: list[Pattern] = [(n, re.compile(rx), t) for n, rx, t in _TABLE]
IP_PATTERNS: list[Pattern] = [(n, re.compile(rx), t) for n, rx, t in _IP_TABLE]
NAMES: tuple[str, ...] = tuple(n for n, _, _ in PATTERNS + IP_PATTERNS)


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
            return token  # its groups are the separators, not a key to keep
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
    folded = text.casefold()  # casefold, not lower: (?i) matches "K" (Kelvin) and "ſ", which fold to k and s
    for name, rx, triggers in table:
        if triggers and not any(t in folded for t in triggers):
            continue
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
