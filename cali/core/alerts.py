"""What the incident tracker asks the alerter to say."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from cali.core.records import Level


class AlertKind(StrEnum):
    FIRST = "first"  # first occurrence of an incident in its window: sent at once
    SUMMARY = "summary"  # a closed window that suppressed repeats: "x57 more in 5 min"


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
