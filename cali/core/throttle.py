"""Per-incident windows: the first occurrence alerts, repeats are counted, a summary closes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


@dataclass
class Window:
    key: str
    opened_at: datetime  # processing time: windows must not depend on producers' clocks
    first_event_id: str
    count: int = 1
    first_seen: datetime | None = None  # event time, for display
    last_seen: datetime | None = None
    last_event_id: str = ""
    info: dict[str, Any] = field(default_factory=dict)  # what the summary must repeat

    @property
    def suppressed(self) -> int:
        return self.count - 1

    def to_json(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies `info` (its stack), a third of a tracker's commit time.
        return {"key": self.key, "opened_at": self.opened_at.isoformat(), "first_event_id": self.first_event_id,
                "count": self.count, "first_seen": self.first_seen.isoformat() if self.first_seen else None,
                "last_seen": self.last_seen.isoformat() if self.last_seen else None,
                "last_event_id": self.last_event_id, "info": self.info}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Window:
        d = dict(d)
        for k in ("opened_at", "first_seen", "last_seen"):
            d[k] = datetime.fromisoformat(d[k]) if d[k] else None
        return cls(**d)


class Throttler:
    """Open windows by incident key. Bounded: past max_keys the oldest window closes early."""

    def __init__(self, window_s: float = 300.0, max_keys: int = 50_000) -> None:
        self.window = timedelta(seconds=window_s)
        self.max_keys = max_keys
        self.windows: dict[str, Window] = {}  # insertion order == opening order
        self.last_closed: list[str] = []  # keys of every window the last close_due() closed

    def observe(self, key: str, event_id: str, event_time: datetime, now: datetime,
                info: dict[str, Any] | None = None) -> tuple[bool, Window]:
        """Returns (alert_now, window). alert_now is True for the first occurrence in a window."""
        w = self.windows.get(key)
        if w is not None and now - w.opened_at < self.window:
            w.count += 1
            w.last_seen = max(w.last_seen or event_time, event_time)
            w.last_event_id = event_id
            return False, w
        w = Window(key=key, opened_at=now, first_event_id=event_id, first_seen=event_time,
                   last_seen=event_time, last_event_id=event_id, info=info or {})
        self.windows.pop(key, None)
        self.windows[key] = w
        return True, w

    def close_due(self, now: datetime) -> list[Window]:
        """Closes every expired window (and the oldest ones past max_keys); returns those that
        suppressed repeats, which owe a summary."""
        closed: list[Window] = []
        self.last_closed = []
        overflow = len(self.windows) - self.max_keys
        for key in list(self.windows):
            w = self.windows[key]
            if now - w.opened_at >= self.window or overflow > 0:
                overflow -= 1
                del self.windows[key]
                self.last_closed.append(key)
                if w.suppressed > 0:
                    closed.append(w)
            else:
                break  # windows are in opening order: the rest are younger
        return closed

    def next_due(self) -> datetime | None:
        if not self.windows:
            return None
        return min(w.opened_at for w in self.windows.values()) + self.window

    def to_state(self) -> dict[str, Any]:
        return {"window_s": self.window.total_seconds(),
                "windows": [w.to_json() for w in self.windows.values()]}

    def load_state(self, state: dict[str, Any]) -> None:
        self.windows = {}
        for d in state.get("windows", []):
            w = Window.from_json(d)
            self.windows[w.key] = w
