"""Tokens of a masked message: its whitespace-separated units, and how a template's unit matches one."""

from __future__ import annotations

import re
from functools import lru_cache

WILDCARD = "<*>"

# A masked value (`<ip>`) or a learned wildcard (`<*>`).
_PLACEHOLDER = re.compile(r"<(?:[a-z_]+|\*)>")
_LETTER = re.compile(r"[^\W\d_]")


def tokenize(masked: str) -> list[str]:
    """The units of a masked message: a value never holds whitespace, so a unit holds at most one."""
    return masked.split()


def has_placeholder(token: str) -> bool:
    return "<" in token and _PLACEHOLDER.search(token) is not None


@lru_cache(maxsize=1 << 16)
def has_wording(token: str) -> bool:
    """Whether `token` holds a letter outside its placeholders (`uid=<num>` does, `<ip>:<num>` not)."""
    if "<" in token:
        token = _PLACEHOLDER.sub("", token)
    return _LETTER.search(token) is not None


def unit_matches(template: str, token: str) -> bool:
    """A template unit matches a token when equal, or when it is `prefix<*>suffix` around it."""
    if template == token:
        return True
    star = template.find(WILDCARD)
    if star < 0:
        return False
    tail = template[star + 3 :]
    if WILDCARD in tail:  # a unit generalised twice, at two places ("<*>=<*>")
        return _pattern(template).fullmatch(token) is not None
    return len(token) >= len(template) - 3 and token.startswith(template[:star]) and token.endswith(tail)


@lru_cache(maxsize=1 << 12)
def _pattern(template: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in template.split(WILDCARD)), re.DOTALL)


def _word_char(c: str) -> bool:
    return c.isalnum() or c in "_<>*"


def _common(a: str, b: str, limit: int) -> int:
    n = 0
    while n < limit and a[n] == b[n]:
        n += 1
    return n


def unit_frame(values: list[str]) -> tuple[int, int]:
    """How many characters all `values` share at their start and at their end, never cutting a
    word or a placeholder in two (the common prefix of a set is that of its min and max)."""
    shortest = min(len(v) for v in values)
    pre = _common(min(values), max(values), shortest)
    first = values[0]
    while pre and _word_char(first[pre - 1]) and any(pre < len(v) and _word_char(v[pre]) for v in values):
        pre -= 1
    backwards = [v[::-1] for v in values]
    suf = _common(min(backwards), max(backwards), shortest - pre)
    while suf and _word_char(first[-suf]) and any(len(v) - suf - 1 >= pre and _word_char(v[-suf - 1])
                                                 for v in values):
        suf -= 1
    return pre, suf


def generalize_unit(values: list[str]) -> str:
    """The unit `prefix<*>suffix` that stands for all of the differing `values`."""
    pre, suf = unit_frame(values)
    first = values[0]
    return first[:pre] + WILDCARD + first[len(first) - suf :]


# Digits are data (see masking), so messages that differ only in their digits are one event: the
# message with every run of digits shortened to "1" is a cache key that skips the regexes. (The
# replaces shorten runs of up to 31 digits to one; longer runs just make a few more keys.)
_DIGITS = bytes.maketrans(b"0123456789", b"1111111111")


def digit_blind(message: str) -> bytes:
    """The cache key of a message: its bytes with each run of digits shortened to one "1"."""
    key = message.encode().translate(_DIGITS)
    return key.replace(b"1111", b"1").replace(b"11", b"1").replace(b"11", b"1").replace(b"11", b"1")
