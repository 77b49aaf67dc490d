"""The regex subset that means the same in Python `re` (CALI's shipper) and Onigmo (Fluent Bit)."""

from __future__ import annotations

import re
from collections.abc import Callable

_PY_GROUP = re.compile(r"\(\?P<")
_ONIG_GROUP = re.compile(r"\(\?<(?=[A-Za-z_])")  # not the look-behinds (?<= and (?<!

# Constructs both engines compile but read differently. Each is (name, regex over the pattern
# with character classes blanked, why). Found by reading Onigmo's Ruby syntax (doc/RE in
# k-takata/Onigmo) beside Python's `re` documentation.
_TRAPS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("^", re.compile(r"\^"), "Onigmo's ^ also matches after every newline of a joined event; use \\A"),
    ("$", re.compile(r"\$"), "Onigmo's $ also matches before every newline of a joined event; leave it out "
                             "or use (?=\\n|\\z) in Onigmo terms"),
    ("\\Z", re.compile(r"\\Z"), "\\Z is end of text in Python but end-or-before-a-final-newline in Onigmo"),
    ("(?P=name)", re.compile(r"\(\?P[=>]"), "Python's (?P=name) back-reference is not Onigmo syntax"),
    ("inline flags", re.compile(r"\(\?[a-zA-Z]*[msLua][a-zA-Z]*[:)-]"),
     "inline flags m, s, a, L, u differ between the engines ((?m) is dot-all in Onigmo, "
     "multi-line anchors in Python); only (?i) and (?x) mean the same"),
)
_CLASS = re.compile(r"\[\^?\]?[^\]]*\]")  # a [...] class once escapes are blanked; "[]]" included
_ESCAPE = re.compile(r"\\.", re.S)


def to_onigmo(regex: str) -> str:
    """Python named groups `(?P<n>` become Onigmo's `(?<n>`; nothing else differs in the subset."""
    return _PY_GROUP.sub("(?<", regex)


def to_python(regex: str) -> str:
    return _ONIG_GROUP.sub("(?P<", regex)


def _outside_classes(regex: str) -> str:
    # Blank escapes first (`\\^` is a literal caret), keeping \Z for its trap, then character
    # classes, where ^ and $ are literal.
    bare = _ESCAPE.sub(lambda m: m.group(0) if m.group(0) == "\\Z" else "__", regex)
    return _CLASS.sub("[]", bare)


def subset_problems(regex: str, onigmo_error: Callable[[str], str | None] | None = None) -> list[str]:
    """Why `regex` (Python spelling, `(?P<name>`) is outside the common subset; [] when it is inside.

    `onigmo_error` compiles the Onigmo spelling and returns the engine's message, or None.
    """
    problems = []
    try:
        re.compile(regex)
    except re.error as exc:
        problems.append(f"does not compile in Python re: {exc}")
    if onigmo_error is not None:
        err = onigmo_error(to_onigmo(regex))
        if err:
            problems.append(f"does not compile in Onigmo (Fluent Bit): {err}")
    bare = _outside_classes(regex)
    for name, trap, why in _TRAPS:
        if trap.search(bare):
            problems.append(f"uses {name}: {why}")
    return problems


def named_groups(regex: str) -> list[str]:
    return list(re.compile(regex).groupindex)


__all__ = ["to_onigmo", "to_python", "subset_problems", "named_groups"]
