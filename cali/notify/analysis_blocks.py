"""Block Kit for the AI analysis follow-up: it names the alert it analyses and says how sure it is."""

from __future__ import annotations

from typing import Any

from cali.core.alerts import Alert
from cali.notify.blocks import (
    FALLBACK_MESSAGE_CHARS,
    MAX_FALLBACK_TEXT,
    MAX_HEADER_TEXT,
    MAX_SECTION_TEXT,
    SEVERITY_STYLE,
    SlackMessage,
    escape,
    fit,
    slack_date,
)

MAX_REMEDIATION = 6
MAX_EVIDENCE = 4
MAX_SIMILAR = 3


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": fit(text, MAX_SECTION_TEXT)}}


def _alert_name(alert: Alert) -> str:
    _, word = SEVERITY_STYLE[alert.severity]
    head = alert.message.splitlines()[0] if alert.message.strip() else "(empty message)"
    return f"[{word}] {alert.service} {alert.level.value}: {fit(head, FALLBACK_MESSAGE_CHARS)}"


def render_analysis(alert: Alert) -> SlackMessage:
    a = alert.analysis or {}
    header = fit(f":mag: Analysis · {alert.service} · {alert.level.value}", MAX_HEADER_TEXT)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": fit(
            f"For the alert {escape(_alert_name(alert))} · first seen {slack_date(alert.first_seen)}", 2000)}]},
    ]
    mode = "LLM, grounded in similar incidents" if a.get("mode") == "llm" else "retrieval only, no LLM"
    if a.get("degraded_reason"):
        mode += f" (LLM step skipped: {escape(str(a['degraded_reason']))})"
    if a.get("abstained"):
        blocks.append(_section("*No similar past incident.* Nothing in the knowledge base is close enough to "
                               "suggest a cause, so CALI does not guess: treat this as a new failure."))
    else:
        blocks.append(_section(f"*Probable cause* · `{escape(str(a.get('category')))}` · confidence "
                               f"{float(a.get('confidence', 0.0)):.2f}\n{escape(str(a.get('probable_cause', '')))}"))
        steps = [escape(str(s)) for s in (a.get("remediation") or [])[:MAX_REMEDIATION]]
        if steps:
            blocks.append(_section("*Remediation*\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))))
        evidence = [str(e).replace("```", "'''") for e in (a.get("evidence") or [])[:MAX_EVIDENCE]]
        if evidence:
            blocks.append(_section("*Evidence*\n```" + escape("\n".join(evidence)) + "```"))
    similar = (a.get("similar") or [])[:MAX_SIMILAR]
    if similar:
        lines = [f"`{escape(str(s.get('id')))}` {escape(str(s.get('title') or s.get('category')))} "
                 f"(similarity {float(s.get('score', 0.0)):.2f})" for s in similar]
        blocks.append(_section("*Similar past incidents*\n" + "\n".join(lines)))
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Analysis: {mode}."}]})
    return SlackMessage(text=fallback_analysis_text(alert), blocks=blocks)


def fallback_analysis_text(alert: Alert) -> str:
    a = alert.analysis or {}
    if a.get("abstained"):
        verdict = "no similar past incident"
    else:
        verdict = f"{a.get('category')} (confidence {float(a.get('confidence', 0.0)):.2f}): " \
                  f"{fit(str(a.get('probable_cause', '')), 300)}"
    return f"Analysis of {escape(_alert_name(alert))}: {escape(verdict)}"[:MAX_FALLBACK_TEXT]
