"""A coordination-free fingerprint: every reader gives the same record the same value."""

from __future__ import annotations

import hashlib
import re

from cali.core.records import LogRecord
from cali.grouping.masking import mask

_PY_TRACEBACK = "Traceback (most recent call last):"
_EXCEPTION_LINE = re.compile(r"^\s*(?:Caused by: )?[\w$.]+(?:Error|Exception|Exit|Panic|Fault)\b.*$")
MAX_HEAD_CHARS = 512


def exception_signature(stack: str | None) -> str:
    """The line that names the exception: the last line of a Python traceback, else the first
    line that looks like one (Java, Node, Go) - so two traces of the same error hash alike
    while their frame line numbers and ids differ."""
    if not stack:
        return ""
    lines = [ln for ln in stack.splitlines() if ln.strip()]
    if not lines:
        return ""
    if lines[0].startswith(_PY_TRACEBACK):
        for ln in reversed(lines):
            if not ln.startswith((" ", "\t")):
                return ln.strip()[:MAX_HEAD_CHARS]
    for ln in lines[:5]:
        if _EXCEPTION_LINE.match(ln):
            return ln.strip()[:MAX_HEAD_CHARS]
    return lines[0].strip()[:MAX_HEAD_CHARS]


_PLACEHOLDER = re.compile(r"<[a-z_]+>")


def masked_head(record: LogRecord) -> str:
    return mask(record.message[:MAX_HEAD_CHARS])


def _shape(masked: str) -> str:
    # Which mask matched depends on the value ("77748719" is <num>, "5455b95a" is <id>), not on
    # the message: for identity every placeholder is the same.
    return _PLACEHOLDER.sub("<*>", masked)


def fingerprint(record: LogRecord) -> str:
    h = hashlib.blake2b(digest_size=8)
    for part in (record.service, record.level.value, _shape(masked_head(record)),
                 _shape(mask(exception_signature(record.stack)))):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def route(fp: str, n: int) -> int:
    """Which of n trackers owns a fingerprint: stable across processes (no PYTHONHASHSEED)."""
    return int(fp[:8], 16) % n if n > 1 else 0
