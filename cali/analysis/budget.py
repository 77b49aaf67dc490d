"""LLM spend control: a per-fingerprint TTL+LRU cache of answers and a daily call budget (clock-injected),
in memory or shared through the state store by every process that calls the LLM."""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, date
from typing import Any, Generic, Protocol, TypeVar

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


class CallBudget(Protocol):
    """Calls per UTC day: try_spend takes n calls if they are left (True) or takes nothing (False)."""

    max_calls: int

    def try_spend(self, n: int = 1) -> bool: ...


class VersionedState(Protocol):
    """The part of a StateStore (cali/state/sqlite_state.py, dynamodb_state.py) an atomic counter needs."""

    def load_versioned(self, key: str) -> tuple[dict[str, Any], int] | None: ...

    def save(self, key: str, value: dict[str, Any], expected_version: int | None = None) -> int: ...


class BudgetContended(Exception):
    """Every optimistic attempt to take from the budget lost a race; nothing was taken."""


class StoredDailyBudget:
    """At most `max_calls` LLM calls per UTC day, counted in a state store that every replica shares.

    One key per UTC day (`<prefix>/<YYYY-MM-DD>`, value {"day", "used", "max_calls"}), so the count
    resets at midnight without a reset step and a restart on the same day does not hand the budget out
    again. Taking is an optimistic increment: read (value, version), check, save with
    expected_version; a VersionConflict (another replica took in between) reads again, with a jittered
    pause, up to `attempts` times. A call is counted when it is made, before its answer: a failed call
    spent the budget too. When every attempt loses, try_spend raises BudgetContended (fail closed: the
    caller gives the retrieval-only analysis).
    """

    def __init__(self, store: VersionedState, clock: Clock, *, max_calls: int, prefix: str = "llm-budget",
                 attempts: int = 16, sleep: Callable[[float], None] = time.sleep,
                 rng: Callable[[], float] = random.random) -> None:
        from cali.state import VersionConflict

        if max_calls < 0 or attempts < 1:
            raise ValueError("StoredDailyBudget needs max_calls >= 0 and attempts >= 1")
        self._store, self._clock = store, clock
        self.max_calls, self.prefix, self.attempts = max_calls, prefix, attempts
        self._sleep, self._rng = sleep, rng
        self._conflict = VersionConflict
        self.conflicts = 0  # lost races, for tests and metrics
        self.left: int | None = None  # calls left as of the last try_spend, for the budget gauge

    def key(self) -> str:
        return f"{self.prefix}/{self._clock.now().astimezone(UTC).date().isoformat()}"

    def used(self) -> int:
        found = self._store.load_versioned(self.key())
        return int(found[0].get("used", 0)) if found else 0

    def try_spend(self, n: int = 1) -> bool:
        """Takes `n` calls from today's shared budget if they are left; False (nothing taken) otherwise."""
        key = self.key()
        for attempt in range(self.attempts):
            found = self._store.load_versioned(key)
            used, version = (int(found[0].get("used", 0)), found[1]) if found else (0, 0)
            if used + n > self.max_calls:
                self.left = max(0, self.max_calls - used)
                return False
            try:
                self._store.save(key, {"day": key.rsplit("/", 1)[1], "used": used + n, "max_calls": self.max_calls},
                                 expected_version=version)
                self.left = self.max_calls - used - n
                return True
            except self._conflict:
                self.conflicts += 1
                self._sleep(min(0.2, 0.005 * 2 ** attempt) * self._rng())
        raise BudgetContended(f"LLM budget {key}: {self.attempts} attempts to take {n} call(s) all lost a race "
                              "with another replica; nothing was taken")


__all__ = ["BudgetContended", "CallBudget", "DailyBudget", "StoredDailyBudget", "VerdictCache", "VersionedState"]
