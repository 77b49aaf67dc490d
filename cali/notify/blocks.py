"""Block Kit rendering of an Alert, with the plain-text fallback Slack shows in notifications."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from cali.core.alerts import Alert, AlertKind, Severity

# Slack's published limits (Block Kit reference; chat.postMessage): a message holds at most 50 blocks,
# a section's text at most 3000 characters, each section field 2000, a header 150 (plain text), a
# context element 3000, a link URL 3000. Top-level `text` is truncated by Slack past 40,000
# characters, but notifications show only the start, so we keep it far shorter.
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_URL = 3000
MAX_FALLBACK_TEXT = 40_000

# Our own, tighter budgets: an alert is read in a glance, the rest is one click away.
MESSAGE_HEAD_CHARS = 1200  # after escaping; well under MAX_SECTION_TEXT with the code fences
FALLBACK_MESSAGE_CHARS = 300
STACK_FRAMES = 8
STACK_LINE_CHARS = 200
VALUE_CHARS = 200  # service, host, env, trace_id in fields

ELLIPSIS = "…"

SEVERITY_STYLE: dict[Severity, tuple[str, str]] = {
    Severity.CRITICAL: (":rotating_light:", "CRITICAL"),
    Severity.HIGH: (":red_circle:", "HIGH"),
    Severity.MEDIUM: (":large_orange_circle:", "MEDIUM"),
}

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


@dataclass(frozen=True)
class SlackMessage:
    text: str  # fallback: notifications, screen readers, clients without Block Kit
    blocks: list[dict[str, Any]] = field(default_factory=list)


def escape(text: str) -> str:
    """Escapes the three characters Slack reserves for its own markup (&, <, >)."""
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


def _code_safe(text: str) -> str:
    # A ``` inside the message would close our code block early; a zero-width space defuses it.
    return text.replace("```", "``\u200b`")


def _inline(value: str, limit: int = VALUE_CHARS) -> str:
    # Inline code cannot contain a backtick; a look-alike keeps the value readable.
    return "`" + fit(value.replace("`", "'"), limit - 2) + "`"


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _plain_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def slack_date(moment: datetime, tokens: str = "{date_short_pretty} {time}") -> str:
    """Slack date formatting: shown in each reader's time zone, with a UTC fallback."""
    return f"<!date^{_epoch(moment)}^{tokens}|{_plain_time(moment)}>"


def window_words(seconds: int) -> str:
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def dashboard_url(template: str, alert: Alert) -> str | None:
    """Fills {service}, {trace_id}, {fingerprint}; each value is URL-quoted, so it cannot break the link."""
    url = template.format(
        service=quote(alert.service, safe=""),
        trace_id=quote(alert.trace_id or "", safe=""),
        fingerprint=quote(alert.fingerprint, safe=""),
    )
    # `|` and `>` end a Slack link; a template that produces them is a configuration error.
    if len(url) > MAX_URL or "|" in url or ">" in url or "<" in url:
        return None
    return url


def _summary_line(alert: Alert) -> str:
    return (
        f"*×{alert.suppressed} more* in {window_words(alert.window_seconds)}, "
        f"last at {slack_date(alert.last_seen, '{time}')}"
    )


def _header(alert: Alert) -> dict[str, Any]:
    emoji, word = SEVERITY_STYLE[alert.severity]
    prefix = "Repeated: " if alert.kind is AlertKind.SUMMARY else ""
    text = f"{emoji} {word} · {prefix}{alert.service} · {alert.level.value}"
    if len(text) > MAX_HEADER_TEXT:
        text = text[: MAX_HEADER_TEXT - 1] + ELLIPSIS
    # plain_text: Slack does not interpret &, <, > here, so no escaping.
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def _section(mrkdwn: str) -> dict[str, Any]:
    assert len(mrkdwn) <= MAX_SECTION_TEXT, len(mrkdwn)
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


def _code_block(text: str, limit: int) -> str:
    return "```" + fit(_code_safe(text), limit - 6) + "```"


def _fields(alert: Alert) -> dict[str, Any]:
    emoji, word = SEVERITY_STYLE[alert.severity]
    pairs = [
        ("Severity", f"{emoji} {word}"),
        ("Service", _inline(alert.service)),
        ("Level", _inline(alert.level.value)),
        ("Count", f"{alert.count}" if alert.kind is AlertKind.FIRST else f"{alert.count} in window"),
        ("Env", _inline(alert.env) if alert.env else "—"),
        ("Host", _inline(alert.host) if alert.host else "—"),
    ]
    if alert.trace_id:
        pairs.append(("Trace", _inline(alert.trace_id)))
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in pairs],
    }


def _stack(alert: Alert) -> str | None:
    frames = [line.rstrip() for line in alert.stack_head[:STACK_FRAMES] if line.strip()]
    if not frames:
        return None
    lines = [
        line if len(line) <= STACK_LINE_CHARS else line[: STACK_LINE_CHARS - 1] + ELLIPSIS for line in frames
    ]
    more = len(alert.stack_head) - len(frames)
    body = "\n".join(lines) + (f"\n… {more} more frame(s)" if more > 0 else "")
    return _code_block(body, MAX_SECTION_TEXT)


def _times(alert: Alert) -> dict[str, Any]:
    parts = [
        f"First seen {slack_date(alert.first_seen)}",
        f"last seen {slack_date(alert.last_seen)}",
        f"fingerprint {_inline(alert.fingerprint, 80)}",
    ]
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(parts)}]}


def fallback_text(alert: Alert) -> str:
    """One line for notifications: severity, service, level, message head (and repeats for a summary)."""
    _, word = SEVERITY_STYLE[alert.severity]
    head = alert.message.splitlines()[0] if alert.message.strip() else "(empty message)"
    text = f"[{word}] {escape(alert.service)} {alert.level.value}: {fit(head, FALLBACK_MESSAGE_CHARS)}"
    if alert.kind is AlertKind.SUMMARY:
        text += (
            f" (×{alert.suppressed} more in {window_words(alert.window_seconds)}, "
            f"last at {_plain_time(alert.last_seen)})"
        )
    if alert.trace_id:
        text += f" trace_id={fit(alert.trace_id, VALUE_CHARS)}"
    return text[:MAX_FALLBACK_TEXT]


def render_alert(alert: Alert, dashboard_url_template: str | None = None) -> SlackMessage:
    """The whole message for one alert: header, what happened, where, when, and a link to look closer."""
    if alert.kind is AlertKind.ANALYSIS:
        from cali.notify.analysis_blocks import render_analysis

        return render_analysis(alert)
    blocks: list[dict[str, Any]] = [_header(alert)]
    if alert.kind is AlertKind.SUMMARY:
        blocks.append(_section(_summary_line(alert)))
    blocks.append(_section(_code_block(alert.message or "(empty message)", MESSAGE_HEAD_CHARS)))
    stack = _stack(alert)
    if stack:
        blocks.append(_section(stack))
    blocks.append(_fields(alert))
    blocks.append(_times(alert))
    if dashboard_url_template:
        url = dashboard_url(dashboard_url_template, alert)
        if url:
            blocks.append(_section(f"<{url}|Open in the CALI dashboard>"))
    assert len(blocks) <= MAX_BLOCKS
    return SlackMessage(text=fallback_text(alert), blocks=blocks)
