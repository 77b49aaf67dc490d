"""The index ports: what the pipeline writes (IndexWriter) and what the console and tools ask (IndexReader)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from cali.core.alerts import Alert
from cali.core.index import IncidentQuery, LogPage, LogQuery, Trend, TrendQuery
from cali.core.ports import HealthChecked


@dataclass
class WriteResult:
    """Documents the index accepted, and those it refused for good (with the reason), by position."""

    written: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


class IndexUnavailable(Exception):
    """The index cannot take the write now (down, throttled, 5xx): retry the whole call later."""


class DocumentRejected(Exception):
    """The index refuses this document for good (a mapping or validation error): retrying cannot help."""


class IndexWriter(HealthChecked, Protocol):
    def write_logs(self, docs: Sequence[dict[str, Any]]) -> WriteResult:
        """Indexes log documents (cali.core.index.log_document) by event_id: a repeat overwrites, never doubles."""
        ...

    def add_alert(self, alert: Alert) -> dict[str, Any]:
        """Merges one delivered alert into its incident document; returns the document."""
        ...

    def resolve_incident(self, incident_key: str, *, note: str, at: datetime, by: str = "console",
                         category: str | None = None, kb_id: str | None = None) -> dict[str, Any]:
        """Marks an incident resolved with a note; KeyError if there is no such incident."""
        ...


class IndexReader(HealthChecked, Protocol):
    def search_logs(self, q: LogQuery) -> LogPage: ...
    def trend(self, q: TrendQuery) -> Trend: ...
    def incidents(self, q: IncidentQuery) -> list[dict[str, Any]]:
        """Incident documents, most recently seen first."""
        ...
    def incident(self, incident_key: str) -> dict[str, Any] | None: ...


class Index(IndexWriter, IndexReader, Protocol):
    def apply_retention(self, now: datetime) -> int:
        """Removes what is past the retention (age, size); returns how many documents went."""
        ...

    def close(self) -> None: ...
