"""Tokens of a masked message: its whitespace-separated units, and how a template's unit matches one."""

from __future__ import annotations

import re

WILDCARD = "<*>"

# A masked value (`<ip>`) or a learned wildcard (`<*>`).
_PLACEHOLDER = re.compile(r"<(?:[a-z_]+|\*)>")
# Wording: a letter that is not inside a placeholder.
_LETTER = re.compile(r"<(?:[a-z_]+|\*)>|([^\W\d_])")


def tokenize(masked: str) -> list[str]:
    """The units of a masked message: a value never holds whitespace, so a unit holds at most one."""
    return masked.split()


def is_placeholder(token: str) -> bool:
    return _PLACEHOLDER.fullmatch(token) is not None


def has_placeholder(token: str) -> bool:
    return "<" in token and _PLACEHOLDER.search(token) is not None


def has_wording(token: str) -> bool:
    """Whether `token` holds a letter outside its placeholders (`uid=<num>` does, `<ip>:<num>` not)."""
    return any(m.group(1) for m in _LETTER.finditer(token))


def unit_matches(template: str, token: str) -> bool:
    """A template unit matches a token when equal, or when it is `prefix<*>suffix` around it."""
    if template == token:
        return True
    star = template.find(WILDCARD)
    if star < 0:
        return False
    tail = template[star + 3 :]
    return len(token) >= len(template) - 3 and token.startswith(template[:star]) and token.endswith(tail)


def _word_char(c: str) -> bool:
    return c.isalnum() or c in "_<>*"


def generalize_unit(values: list[str]) -> tuple[str, list[str]]:
    """The unit `prefix<*>suffix` for differing `values`, and the part of each value the wildcard
    stands for. The prefix and suffix never cut a word or a placeholder in two."""
    first = values[0]
    pre = len(first)
    for v in values[1:]:
        n = 0
        while n < pre and n < len(v) and v[n] == first[n]:
            n += 1
        pre = n
    while pre and _word_char(first[pre - 1]) and any(pre < len(v) and _word_char(v[pre]) for v in values):
        pre -= 1
    suf = min(len(v) for v in values) - pre
    for v in values[1:]:
        n = 0
        while n < suf and v[-1 - n] == first[-1 - n]:
            n += 1
        suf = n
    while suf and _word_char(first[-suf]) and any(len(v) - suf - 1 >= pre and _word_char(v[-suf - 1])
                                                 for v in values):
        suf -= 1
    end = len(first) - suf
    template = first[:pre] + WILDCARD + first[end:]
    return template, [v[pre : len(v) - suf] for v in values]


# Digits are data (see masking), so messages that differ only in their digits are one event: the
# message with every run of digits shortened to "1" is a cache key that skips the regexes. (The
# replaces shorten runs of up to 31 digits to one; longer runs just make a few more keys.)
_DIGITS = bytes.maketrans(b"0123456789", b"1111111111")


def digit_blind(message: str) -> bytes:
    """The cache key of a message: its bytes with each run of digits shortened to one "1"."""
    key = message.encode().translate(_DIGITS)
    return key.replace(b"1111", b"1").replace(b"11", b"1").replace(b"11", b"1").replace(b"11", b"1")
