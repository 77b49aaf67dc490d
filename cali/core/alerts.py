"""What the incident tracker asks the alerter to say."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from cali.core.records import Level


class AlertKind(StrEnum):
    FIRST = "first"  # first occurrence of an incident in its window: sent at once
    SUMMARY = "summary"  # a closed window that suppressed repeats: "x57 more in 5 min"
    ANALYSIS = "analysis"  # the AI analysis of a FIRST alert, posted after it (thread reply or follow-up)


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"


def severity_for(level: Level) -> Severity:
    if level is Level.FATAL:
        return Severity.CRITICAL
    return Severity.HIGH if level is Level.ERROR else Severity.MEDIUM


class Alert(BaseModel):
    """One Slack-bound message; alert_id is deterministic so a replayed alert is delivered once."""

    model_config = ConfigDict(frozen=True)

    alert_id: str
    kind: AlertKind
    incident_key: str  # service|level|group: the identity an SRE sees as "one incident"
    fingerprint: str
    service: str
    level: Level
    severity: Severity
    message: str  # head of the message, redaction applied by the alerter
    template: str
    stack_head: list[str] = []  # first frames only: enough to recognise, short enough to read
    count: int = 1  # occurrences in this window, this one included
    suppressed: int = 0  # for SUMMARY: repeats counted but not sent
    window_seconds: int = 300
    first_seen: datetime
    last_seen: datetime
    created_at: datetime
    trace_id: str | None = None
    host: str | None = None
    env: str | None = None
    event_id: str | None = None
    stack: str | None = None  # the whole (capped) stack, for the analysis; Slack shows stack_head
    analysis: dict[str, Any] | None = None  # ANALYSIS only: cali.analysis.model.Analysis as JSON
    parent_alert_id: str | None = None  # ANALYSIS only: the alert it analyses


MAX_ALERT_STACK_CHARS = 16_384


def analysis_alert(parent: Alert, analysis: dict[str, Any], now: datetime) -> Alert:
    """The follow-up message carrying an analysis of `parent`; its id is derived, so it is sent once."""
    return parent.model_copy(update={
        "alert_id": f"{parent.alert_id}#analysis", "kind": AlertKind.ANALYSIS, "analysis": analysis,
        "parent_alert_id": parent.alert_id, "created_at": now, "stack": None})
