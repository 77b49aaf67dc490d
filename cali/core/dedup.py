"""A bounded window of recently seen event ids, to drop at-least-once replays."""

from __future__ import annotations

from collections import OrderedDict


class RecentIds:
    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    def seen(self, event_id: str) -> bool:
        """True if event_id was seen within the window; records it otherwise."""
        if event_id in self._ids:
            return True
        self.add(event_id)
        return False

    def __len__(self) -> int:
        return len(self._ids)
