"""Named regexes that replace the variable parts of a log message by `<name>` placeholders."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from functools import cache

# A variable never starts inside a word ("u0" becomes "<id>", not "u<num>"): each pattern below
# is written from the variable's first character and only applies after a character that is not
# part of a word, i.e. not in [\w.+-]. Patterns may add their own lookbehind for stricter cases.
_BOUNDARY = r"[^\w.+-]"
_R = r"(?![\w-])(?!\.\w)"  # a variable does not end inside a word either
_HEX = "[0-9a-fA-F]"
_NUM = r"[-+]?\d+(?:[.,]\d+)*"

# Order matters: at each position the first pattern that matches wins, so the specific shapes
# come before the catch-all `num` and `id`. The first group needs no digit; every pattern of the
# second group needs a digit in the variable's first word, which one cheap lookahead checks
# before any of them runs (so a plain word costs one scan, not eleven).
_WITHOUT_DIGIT: list[tuple[str, str]] = [
    ("email", r"[\w.+-]++@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}" + _R),
    # The scheme stays ("https://<url>").
    ("url", r"[a-zA-Z][a-zA-Z0-9+.-]{0,15}://[^\s\"'<>]+"),
    # ctime and syslog: "Sat Jun 18 02:08:10 2005", "Jun 18 02:08:10"
    ("datetime", r"[A-Z][a-z]{2,8},?\s+(?:[A-Z][a-z]{2,8}\s+)?\d\d?,?\s+(?:\d{4}\s+)?"
                 r"\d\d?:\d\d(?::\d\d(?:[.,]\d+)?)?(?:\s+\d{4}(?!\w))?" + _R),
    # A boolean literal is a value, never the name of an event.
    ("bool", r"(?:true|false|True|False|TRUE|FALSE)(?![\w-])"),
]
_DIGIT_AHEAD = r"(?=(?:[^\W\d]|[.:+-])*+\d)"
_WITH_DIGIT: list[tuple[str, str]] = [
    ("uuid", _HEX + r"{8}-?" + _HEX + r"{4}-?" + _HEX + r"{4}-?" + _HEX + r"{4}-?" + _HEX + "{12}" + _R),
    ("mac", r"(?:" + _HEX + r"{2}[:-]){5}" + _HEX + "{2}" + _R),
    ("datetime", r"\d{4}[-/]\d\d[-/]\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?" + _R),
    ("ip", r"(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?" + _R),
    ("ipv6", r"(?<!:)(?:" + _HEX + r"{1,4}:){7}" + _HEX + r"{1,4}(?![\w:])"
             r"|(?<!:)(?:" + _HEX + r"{1,4}:)+:(?:" + _HEX + r"{1,4}(?::" + _HEX + r"{1,4})*)?(?![\w:])"),
    ("time", r"\d\d?:\d\d:\d\d(?:[.,]\d+)?" + _R),
    ("hex", r"0[xX][0-9a-fA-F]+" + _R),
    ("duration", _NUM + r"(?:\s?(?:ms|msec|msecs|millis|milliseconds|sec|secs|seconds|mins?|minutes"
                 r"|hours?|days?)|(?:ns|us|µs|s|m|h|d))" + _R),
    ("size", _NUM + r"(?:\s?(?:[KMGTP]?i?B|bytes?)|[kKMGTP])" + _R),
    ("num", _NUM + r"(?:[eE][-+]?\d+)?" + _R),
    # Any other word holding a digit (blk_-6952, appattempt_14_0020, de9231d, eth0) is an identifier.
    ("id", r"(?:[^\W\d]|[.-])*\d[\w.-]*(?<![.-])"),
]
_TABLE = _WITHOUT_DIGIT + _WITH_DIGIT

# The placeholder names, in table order.
NAMES: list[str] = list(dict.fromkeys(name for name, _ in _TABLE))


def _alternatives(group: list[tuple[str, str]], seen: set[str]) -> str:
    # The empty named group at the end of each alternative tells which pattern matched; a name
    # that appears again (datetime has two shapes, some patterns two branches) gets a suffix.
    parts = []
    for name, rx in group:
        tag = name
        while tag in seen:
            tag += "_"
        seen.add(tag)
        parts.append(f"(?:{rx})(?P<{tag}>)")
    return "|".join(parts)


# A word that starts with a letter can only be one of these (the others start with a digit, a
# sign or "0x"): trying only them saves most of the work on identifiers such as blk_-6952.
_LETTER_FIRST = ("uuid", "mac", "ipv6", "id")
# Every pattern needs one of these characters or words, so plain sentences skip the big regex.
_MAYBE_VARIABLE = re.compile(r"[\d@]|://|true|false", re.IGNORECASE)
# Patterns that cannot match without a marker are left out of the regex for a text that lacks
# it: trying them at every word boundary would cost as much as all the others together.
_MARKED = ("email", "url", "bool")


class _Masker:
    def __init__(self, disabled: frozenset[str]) -> None:
        self.disabled = disabled
        self.compiled: dict[tuple[bool, ...], re.Pattern[str]] = {}

    def pattern(self, text: str) -> re.Pattern[str]:
        lower = text.lower()
        present = ("@" in text, "://" in text, "true" in lower or "false" in lower)
        rx = self.compiled.get(present)
        if rx is None:
            absent = {name for name, here in zip(_MARKED, present, strict=True) if not here}
            rx = self.compiled[present] = self._compile(self.disabled | absent)
        return rx

    @staticmethod
    def _compile(disabled: frozenset[str] | set[str]) -> re.Pattern[str]:
        seen: set[str] = set()
        first = _alternatives([(n, rx) for n, rx in _WITHOUT_DIGIT if n not in disabled], seen)
        lettered = _alternatives([(n, rx) for n, rx in _WITH_DIGIT if n not in disabled and n in _LETTER_FIRST],
                                 seen)
        second = _alternatives([(n, rx) for n, rx in _WITH_DIGIT if n not in disabled], seen)
        # One alternation, and it starts by consuming the boundary character: the regex engine
        # then hops between boundaries in C instead of trying every pattern at every character.
        return re.compile(f"({_BOUNDARY})(?:{first or '(?!)'}|{_DIGIT_AHEAD}"
                          f"(?:(?=[^\\W\\d_])(?:{lettered or '(?!)'})|(?![^\\W\\d_])(?:{second or '(?!)'})))")

    def __call__(self, text: str) -> str:
        if not _MAYBE_VARIABLE.search(text):
            return text
        # The leading space is the boundary for a variable at the very start of the message.
        return self.pattern(text).sub(_replace, " " + text)[1:]


@cache
def masker(disabled: frozenset[str] = frozenset()) -> Callable[[str], str]:
    """`mask` without the patterns named in `disabled` (for ablations), compiled once per set."""
    return _Masker(disabled)


def mask(text: str, counts: Counter[str] | None = None) -> str:
    """Replace every variable in `text` by `<name>`; count hits per pattern name into `counts`."""
    full = masker()
    if counts is None:
        return full(text)
    if not _MAYBE_VARIABLE.search(text):
        return text

    def counting(m: re.Match[str]) -> str:
        text = _replace(m)
        counts[text[text.index("<") + 1 : -1]] += 1
        return text

    return full.pattern(text).sub(counting, " " + text)[1:]  # type: ignore[attr-defined]


def _replace(m: re.Match[str]) -> str:
    name = m.lastgroup.rstrip("_")  # type: ignore[union-attr]
    if name == "url":
        text = m.group()
        scheme = text.find("://")
        if scheme >= 0:
            return text[: scheme + 3] + "<url>"
    return f"{m[1]}<{name}>"
