"""Compiles a regex the way Fluent Bit would, offline, through the Oniguruma library (onigurumacffi)."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1024)
def onigmo_error(pattern: str) -> str | None:
    """The engine's error message for `pattern` (Onigmo spelling, `(?<name>`), or None if it compiles.

    Fluent Bit links Onigmo (Ruby syntax); onigurumacffi bundles Oniguruma 6.9, the library Onigmo
    forked from, whose default syntax is Ruby's: both reject the same Python-only constructs
    ((?P<...>), (?P=...), (?s), (?a)) and accept the same common subset. What they compile but read
    differently is checked by cali.core.regex_compat.
    """
    import onigurumacffi

    try:
        onigurumacffi.compile(pattern)
    except onigurumacffi.OnigError as exc:
        return str(exc)
    return None
