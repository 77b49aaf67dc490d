"""Slack mrkdwn from parts: text is escaped exactly once, here; CALI's own markup (dates, links) never is.

Slack parses `&`, `<` and `>` as control characters in mrkdwn ("Formatting text for app surfaces"):
they are the only characters to escape, and only once. A plain `str` handed to `md()` is data (log
text, the LLM's words, service names) and gets escaped; a `Markup` is already Slack markup and is kept
as it is. `Markup` is not a `str`, so it cannot be concatenated into a string and escaped a second time
by accident: composing goes through `md()`, and a block takes only `Markup`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

ELLIPSIS = "…"
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_FENCE = "```"


@dataclass(frozen=True)
class Markup:
    """Text already in Slack mrkdwn: escaped data plus CALI's own tokens."""

    text: str

    def __len__(self) -> int:
        return len(self.text)


def escape(text: str) -> str:
    """Escapes the three characters Slack reserves for its own markup (&, <, >); nothing else."""
    return "".join(_ENTITIES.get(ch, ch) for ch in text)


def fit(text: str, limit: int) -> str:
    """Escapes `text` and truncates it to `limit` characters without cutting an entity in half."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    used = 0
    for ch in text:
        piece = _ENTITIES.get(ch, ch)
        if used + len(piece) > limit - len(ELLIPSIS):
            break
        out.append(piece)
        used += len(piece)
    return "".join(out) + ELLIPSIS


def clip(text: str, limit: int) -> str:
    """Raw text cut to `limit` characters (before escaping), with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - len(ELLIPSIS))] + ELLIPSIS


def data(text: str, limit: int | None = None) -> Markup:
    """Log or model text as markup: escaped once, and fitted to `limit` escaped characters if given."""
    return Markup(escape(text) if limit is None else fit(text, limit))


def md(*parts: str | Markup) -> Markup:
    """Joins parts into one markup: each `str` is data and is escaped, each `Markup` is kept."""
    return Markup("".join(p.text if isinstance(p, Markup) else escape(p) for p in parts))


def join(sep: str | Markup, parts: list[Markup]) -> Markup:
    glue = sep.text if isinstance(sep, Markup) else escape(sep)
    return Markup(glue.join(p.text for p in parts))


def truncate(markup: Markup, limit: int) -> Markup:
    """`markup` cut to `limit` characters at a safe place: never inside an entity or a <...> token, and
    a code block left open by the cut is closed again."""
    text = markup.text
    if len(text) <= limit:
        return markup
    budget = limit - len(ELLIPSIS) - len(_FENCE)
    cut, i = 0, 0
    while i < len(text):
        ch = text[i]
        end = i + 1
        if ch == "&":
            semi = text.find(";", i)
            end = semi + 1 if semi != -1 else end
        elif ch == "<":
            close = text.find(">", i)
            end = close + 1 if close != -1 else end
        if end > budget:
            break
        cut = i = end
    head = text[:cut] + ELLIPSIS
    if head.count(_FENCE) % 2:
        head += _FENCE
    return Markup(head)


def inline_code(text: str, limit: int) -> Markup:
    """`text` as inline code; a backtick inside would end it, so a look-alike quote stands in."""
    return Markup("`" + fit(text.replace("`", "'"), limit - 2) + "`")


def code_block(text: str, limit: int) -> Markup:
    """`text` in a code block; a ``` inside would close it early, so a zero-width space defuses it."""
    return Markup(_FENCE + fit(text.replace(_FENCE, "``\u200b`"), limit - 2 * len(_FENCE)) + _FENCE)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def plain_time(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def slack_date(moment: datetime, tokens: str = "{date_short_pretty} {time}") -> Markup:
    """Slack date formatting: shown in each reader's time zone, with a UTC fallback."""
    return Markup(f"<!date^{int(_utc(moment).timestamp())}^{tokens}|{plain_time(moment)}>")


def link(url: str, label: str) -> Markup:
    """A manual link; the caller checks the URL holds no `|`, `<` or `>`, which would end the token."""
    return Markup(f"<{url}|{escape(label)}>")


def text_object(markup: Markup) -> dict[str, Any]:
    """A mrkdwn text object. verbatim: Slack still renders our markup, but does not turn plain words
    of the data into links or mentions (no auto-linked channel names, no parsed @here)."""
    if not isinstance(markup, Markup):
        raise TypeError(f"a text object takes Markup, not {type(markup).__name__}: escape data with md()")
    return {"type": "mrkdwn", "text": markup.text, "verbatim": True}


def section(markup: Markup, limit: int) -> dict[str, Any]:
    return {"type": "section", "text": text_object(truncate(markup, limit))}


__all__ = ["ELLIPSIS", "Markup", "clip", "code_block", "data", "escape", "fit", "inline_code", "join", "link",
           "md", "plain_time", "section", "slack_date", "text_object", "truncate"]
