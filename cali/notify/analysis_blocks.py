"""Block Kit for the AI analysis follow-up: it names the alert, says how sure it is and where each step comes from.

Everything in an analysis is data (the log's words, the LLM's words, knowledge-base titles): it is
escaped once, by `md()`, when the blocks are built, and never before (see cali/notify/mrkdwn.py).
"""

from __future__ import annotations

from typing import Any

from cali.core.alerts import Alert
from cali.notify.blocks import (
    FALLBACK_MESSAGE_CHARS,
    MAX_FALLBACK_TEXT,
    MAX_SECTION_TEXT,
    SEVERITY_STYLE,
    SlackMessage,
    context,
    header,
)
from cali.notify.mrkdwn import Markup, clip, code_block, fit, inline_code, join, md, section, slack_date

MAX_REMEDIATION = 6
MAX_EVIDENCE = 4
MAX_SIMILAR = 3
CAUSE_CHARS = 1500
STEP_CHARS = 400
TITLE_CHARS = 160
CONTEXT_CHARS = 2000


def _alert_name(alert: Alert) -> str:
    """The alert as one raw line (not escaped): severity, service, level, first message line."""
    _, word = SEVERITY_STYLE[alert.severity]
    head = alert.message.splitlines()[0] if alert.message.strip() else "(empty message)"
    return f"[{word}] {alert.service} {alert.level.value}: {clip(head, FALLBACK_MESSAGE_CHARS)}"


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _strings(value: Any, limit: int) -> list[str]:
    return [str(v) for v in (value or [])[:limit] if str(v).strip()]


def _threshold(a: dict[str, Any]) -> float | None:
    t = a.get("similarity_threshold")
    return None if t is None else _float(t)


def _above(a: dict[str, Any], similar: list[dict[str, Any]]) -> bool:
    """True when some listed entry reaches the similarity threshold (a match, not just the nearest)."""
    t = _threshold(a)
    return t is not None and any(_float(s.get("score")) >= t for s in similar)


def _verdict(a: dict[str, Any], similar: list[dict[str, Any]]) -> Markup:
    if a.get("abstained"):
        if _above(a, similar):
            # Retrieval found close entries but the analysis named no cause (the LLM abstained).
            return md("*No probable cause.* The closest past incidents do not explain this alert well enough to "
                      "name a cause, so CALI does not guess: treat it as a new failure.")
        return md("*No similar past incident.* Nothing in the knowledge base is close enough to suggest a cause, "
                  "so CALI does not guess: treat this as a new failure.")
    return md("*Probable cause* · ", inline_code(str(a.get("category")), 80),
              f" · confidence {_float(a.get('confidence')):.2f}\n", clip(str(a.get("probable_cause", "")), CAUSE_CHARS))


def _steps(items: list[str], numbered: bool) -> Markup:
    lines = [md(f"{i}. " if numbered else "• ", clip(s, STEP_CHARS)) for i, s in enumerate(items, 1)]
    return join("\n", lines)


def _similar(a: dict[str, Any], similar: list[dict[str, Any]]) -> Markup:
    lines = join("\n", [md(inline_code(str(s.get("id")), 60), " ",
                           clip(str(s.get("title") or s.get("category") or ""), TITLE_CHARS),
                           f" (similarity {_float(s.get('score')):.2f})") for s in similar])
    if not a.get("abstained"):
        return md("*Similar past incidents*\n", lines)
    t = _threshold(a)
    if _above(a, similar):
        return md("*Closest past incidents* (none explains this alert)\n", lines)
    below = f"below the similarity threshold {t:.2f}" if t is not None else "below the similarity threshold"
    return md(f"*Nearest knowledge-base entries* ({below}: not matches)\n", lines)


def render_analysis(alert: Alert) -> SlackMessage:
    a = alert.analysis or {}
    similar = [s for s in (a.get("similar") or [])[:MAX_SIMILAR] if isinstance(s, dict)]
    blocks: list[dict[str, Any]] = [
        header(f":mag: Analysis · {alert.service} · {alert.level.value}"),
        context(md("For the alert ", clip(_alert_name(alert), CONTEXT_CHARS), " · first seen ",
                   slack_date(alert.first_seen))),
        section(_verdict(a, similar), MAX_SECTION_TEXT),
    ]
    if not a.get("abstained"):
        steps = _strings(a.get("remediation"), MAX_REMEDIATION)
        if steps:
            sources = _strings(a.get("remediation_from"), 5)
            title = md("*Remediation* · from ", join(", ", [inline_code(s, 60) for s in sources]), "\n") if sources \
                else md("*Remediation*\n")
            blocks.append(section(md(title, _steps(steps, numbered=True)), MAX_SECTION_TEXT))
        own = _strings(a.get("model_suggestions"), MAX_REMEDIATION)
        if own:
            blocks.append(section(md("*Suggested by the model* · _its own idea, in none of the cited incidents: "
                                     "check before acting_\n", _steps(own, numbered=False)), MAX_SECTION_TEXT))
        evidence = _strings(a.get("evidence"), MAX_EVIDENCE)
        if evidence:
            blocks.append(section(md("*Evidence*\n", code_block("\n".join(evidence), MAX_SECTION_TEXT - 20)),
                                  MAX_SECTION_TEXT))
    if similar:
        blocks.append(section(_similar(a, similar), MAX_SECTION_TEXT))
    blocks.append(context(_footer(a)))
    return SlackMessage(text=fallback_analysis_text(alert), blocks=blocks)


def _footer(a: dict[str, Any]) -> Markup:
    mode = "LLM, grounded in similar incidents" if a.get("mode") == "llm" else "retrieval only, no LLM"
    parts = [md("Analysis: ", mode)]
    if a.get("degraded_reason"):
        parts.append(md("LLM step skipped: ", clip(str(a["degraded_reason"]), 300)))
    parts += [md(clip(n, 300)) for n in _strings(a.get("grounding_notes"), 5)]
    return md(join(" · ", parts), ".")


def fallback_analysis_text(alert: Alert) -> str:
    """The notification line; the top-level text is mrkdwn, so it is escaped here, once."""
    a = alert.analysis or {}
    if a.get("abstained"):
        verdict = "no similar past incident"
    else:
        verdict = (f"{a.get('category')} (confidence {_float(a.get('confidence')):.2f}): "
                   f"{clip(str(a.get('probable_cause', '')), 300)}")
    return fit(f"Analysis of {_alert_name(alert)}: {verdict}", MAX_FALLBACK_TEXT)
