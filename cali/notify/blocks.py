"""Block Kit rendering of an Alert, with the plain-text fallback Slack shows in notifications."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from cali.core.alerts import Alert, AlertKind, Severity
from cali.notify.mrkdwn import (
    ELLIPSIS,
    Markup,
    code_block,
    escape,
    fit,
    inline_code,
    join,
    link,
    md,
    plain_time,
    section,
    slack_date,
    text_object,
    truncate,
)

# Slack's published limits (Block Kit reference; chat.postMessage): a message holds at most 50 blocks,
# a section's text at most 3000 characters, each section field 2000, a header 150 (plain text), a
# context element 3000, a link URL 3000. Top-level `text` is truncated by Slack past 40,000
# characters, but notifications show only the start, so we keep it far shorter.
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_TEXT = 3000
MAX_URL = 3000
MAX_FALLBACK_TEXT = 40_000

# Our own, tighter budgets: an alert is read in a glance, the rest is one click away.
MESSAGE_HEAD_CHARS = 1200  # after escaping; well under MAX_SECTION_TEXT with the code fences
FALLBACK_MESSAGE_CHARS = 300
STACK_FRAMES = 8
STACK_LINE_CHARS = 200
VALUE_CHARS = 200  # service, host, env, trace_id in fields

SEVERITY_STYLE: dict[Severity, tuple[str, str]] = {
    Severity.CRITICAL: (":rotating_light:", "CRITICAL"),
    Severity.HIGH: (":red_circle:", "HIGH"),
    Severity.MEDIUM: (":large_orange_circle:", "MEDIUM"),
}


@dataclass(frozen=True)
class SlackMessage:
    text: str  # fallback: notifications, screen readers, clients without Block Kit
    blocks: list[dict[str, Any]] = field(default_factory=list)


def header(text: str) -> dict[str, Any]:
    """A header block. plain_text: Slack does not interpret &, <, > there, so the text is not escaped."""
    if len(text) > MAX_HEADER_TEXT:
        text = text[: MAX_HEADER_TEXT - 1] + ELLIPSIS
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def context(markup: Markup) -> dict[str, Any]:
    return {"type": "context", "elements": [text_object(truncate(markup, MAX_CONTEXT_TEXT))]}


def _inline(value: str, limit: int = VALUE_CHARS) -> Markup:
    return inline_code(value, limit)


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


def _summary_line(alert: Alert) -> Markup:
    return md(f"*×{alert.suppressed} more* in {window_words(alert.window_seconds)}, last at ",
              slack_date(alert.last_seen, "{time}"))


def _header(alert: Alert) -> dict[str, Any]:
    emoji, word = SEVERITY_STYLE[alert.severity]
    prefix = "Repeated: " if alert.kind is AlertKind.SUMMARY else ""
    return header(f"{emoji} {word} · {prefix}{alert.service} · {alert.level.value}")


def _fields(alert: Alert) -> dict[str, Any]:
    emoji, word = SEVERITY_STYLE[alert.severity]
    pairs: list[tuple[str, Markup]] = [
        ("Severity", md(f"{emoji} {word}")),
        ("Service", _inline(alert.service)),
        ("Level", _inline(alert.level.value)),
        ("Count", md(f"{alert.count}" if alert.kind is AlertKind.FIRST else f"{alert.count} in window")),
        ("Env", _inline(alert.env) if alert.env else md("—")),
        ("Host", _inline(alert.host) if alert.host else md("—")),
    ]
    if alert.trace_id:
        pairs.append(("Trace", _inline(alert.trace_id)))
    return {"type": "section", "fields": [text_object(md(f"*{name}*\n", value)) for name, value in pairs]}


def _stack(alert: Alert) -> Markup | None:
    frames = [line.rstrip() for line in alert.stack_head[:STACK_FRAMES] if line.strip()]
    if not frames:
        return None
    lines = [
        line if len(line) <= STACK_LINE_CHARS else line[: STACK_LINE_CHARS - 1] + ELLIPSIS for line in frames
    ]
    more = len(alert.stack_head) - len(frames)
    body = "\n".join(lines) + (f"\n… {more} more frame(s)" if more > 0 else "")
    return code_block(body, MAX_SECTION_TEXT)


def _times(alert: Alert) -> dict[str, Any]:
    parts = [
        md("First seen ", slack_date(alert.first_seen)),
        md("last seen ", slack_date(alert.last_seen)),
        md("fingerprint ", _inline(alert.fingerprint, 80)),
    ]
    return context(join(" · ", parts))


def fallback_text(alert: Alert) -> str:
    """One line for notifications: severity, service, level, message head (and repeats for a summary).

    The top-level text is mrkdwn too, so data in it is escaped (once)."""
    _, word = SEVERITY_STYLE[alert.severity]
    head = alert.message.splitlines()[0] if alert.message.strip() else "(empty message)"
    text = f"[{word}] {escape(alert.service)} {alert.level.value}: {fit(head, FALLBACK_MESSAGE_CHARS)}"
    if alert.kind is AlertKind.SUMMARY:
        text += (
            f" (×{alert.suppressed} more in {window_words(alert.window_seconds)}, "
            f"last at {plain_time(alert.last_seen)})"
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
        blocks.append(section(_summary_line(alert), MAX_SECTION_TEXT))
    blocks.append(section(code_block(alert.message or "(empty message)", MESSAGE_HEAD_CHARS), MAX_SECTION_TEXT))
    stack = _stack(alert)
    if stack:
        blocks.append(section(stack, MAX_SECTION_TEXT))
    blocks.append(_fields(alert))
    blocks.append(_times(alert))
    if dashboard_url_template:
        url = dashboard_url(dashboard_url_template, alert)
        if url:
            blocks.append(section(link(url, "Open in the CALI dashboard"), MAX_SECTION_TEXT))
    assert len(blocks) <= MAX_BLOCKS
    return SlackMessage(text=fallback_text(alert), blocks=blocks)


__all__ = ["MAX_BLOCKS", "MAX_FIELD_TEXT", "MAX_HEADER_TEXT", "MAX_SECTION_TEXT", "SEVERITY_STYLE", "SlackMessage",
           "context", "dashboard_url", "escape", "fallback_text", "fit", "header", "render_alert", "slack_date",
           "window_words"]
