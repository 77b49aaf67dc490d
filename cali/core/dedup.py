"""A bounded window of recently seen keys (event ids, origin hashes), to recognise at-least-once repeats."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class RecentIds:
    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def add(self, key: Any) -> None:
        self._ids[key] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)

    def seen(self, key: Any) -> bool:
        """True if key was seen within the window; records it otherwise."""
        if key in self._ids:
            return True
        self.add(key)
        return False

    def __len__(self) -> int:
        return len(self._ids)
