"""The one grouping identity: which tracker owns a record, what text its template is mined from, its key.

Routing and grouping share it: a record goes to the tracker that owns its service, and that tracker's
template miner for the service gives the group, so one incident can never be counted by two trackers.
The daily batch job groups the archive with the same functions.
"""

from __future__ import annotations

import hashlib
import re

from cali.core.records import LogRecord
from cali.core.redaction import redact

_PY_TRACEBACK = "Traceback (most recent call last):"
_EXCEPTION_LINE = re.compile(r"^\s*(?:Caused by: )?[\w$.]+(?:Error|Exception|Exit|Panic|Fault)\b.*$")
MAX_HEAD_CHARS = 512


def exception_signature(stack: str | None) -> str:
    """The line that names the exception: the last line of a Python traceback, else the first
    line that looks like one (Java, Node, Go) - so two traces of the same error group alike
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


def grouping_text(record: LogRecord) -> str:
    """What the template miner sees: the redacted message head, plus the exception line of the stack,
    so two failures behind one generic header ("Request processing failed") stay two incidents.
    Redacted here, before anything is mined or persisted."""
    text = redact(record.message[:MAX_HEAD_CHARS])
    signature = exception_signature(record.stack)
    if signature:
        signature = redact(signature)
        if signature not in text:
            text = f"{text} | {signature}"
    return text


def incident_key(service: str, level: str, group_id: str) -> str:
    return f"{service}|{level}|{group_id}"


def incident_fingerprint(key: str) -> str:
    """A short stable id of an incident key, for caches, links and the knowledge base."""
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def route(service: str, n: int) -> int:
    """Which of n trackers owns a service: stable across processes and restarts (no PYTHONHASHSEED)."""
    if n <= 1:
        return 0
    return int.from_bytes(hashlib.blake2b(service.encode("utf-8", "surrogatepass"), digest_size=8).digest()) % n
