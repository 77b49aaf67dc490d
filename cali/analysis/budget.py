"""LLM spend control: a per-fingerprint TTL+LRU cache of answers and a daily call budget (clock-injected)."""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, date
from typing import Any, Generic, TypeVar

from cali.core.ports import Clock

V = TypeVar("V")


class VerdictCache(Generic[V]):
    """Answers by incident fingerprint: a repeat within `ttl_s` is served from here, not asked again.

    Bounded LRU: beyond `max_entries` the least recently used entry goes. Expiry runs on the
    monotonic clock, so a wall-clock jump neither keeps nor drops entries.
    """

    def __init__(self, clock: Clock, *, ttl_s: float = 3600.0, max_entries: int = 1024) -> None:
        if ttl_s <= 0 or max_entries < 1:
            raise ValueError("VerdictCache needs ttl_s > 0 and max_entries >= 1")
        self._clock = clock
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._items: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        stored_at, value = item
        if self._clock.monotonic() - stored_at >= self.ttl_s:
            del self._items[key]
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: str, value: V) -> None:
        self._items[key] = (self._clock.monotonic(), value)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items


class DailyBudget:
    """At most `max_calls` LLM calls per UTC day; the count resets at UTC midnight.

    `to_state()`/`load_state()` give a JSON-able dict for a StateStore, so a restart on the same
    day does not hand out the day's budget a second time.
    """

    def __init__(self, clock: Clock, *, max_calls: int) -> None:
        if max_calls < 0:
            raise ValueError("DailyBudget needs max_calls >= 0 (0 turns the LLM off)")
        self._clock = clock
        self.max_calls = max_calls
        self._day: date = self._today()
        self._used = 0

    def _today(self) -> date:
        return self._clock.now().astimezone(UTC).date()

    def _roll(self) -> None:
        today = self._today()
        if today != self._day:
            self._day, self._used = today, 0

    @property
    def used(self) -> int:
        self._roll()
        return self._used

    @property
    def remaining(self) -> int:
        self._roll()
        return max(0, self.max_calls - self._used)

    def try_spend(self, n: int = 1) -> bool:
        """Takes `n` calls from today's budget if they are left; False (and nothing taken) otherwise."""
        self._roll()
        if self._used + n > self.max_calls:
            return False
        self._used += n
        return True

    def to_state(self) -> dict[str, Any]:
        self._roll()
        return {"day": self._day.isoformat(), "used": self._used}

    def load_state(self, state: dict[str, Any] | None) -> None:
        """Restores a saved count; a count from an earlier day (or a broken state) is ignored."""
        if not state:
            return
        try:
            day = date.fromisoformat(str(state["day"]))
            used = int(state["used"])
        except (KeyError, TypeError, ValueError):
            return
        if day == self._today() and used >= 0:
            self._day, self._used = day, used


__all__ = ["DailyBudget", "VerdictCache"]
