"""The answer cache (TTL, LRU) and the daily LLM budget (in memory and shared in a state store), on a fake clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from cali.analysis.budget import BudgetContended, DailyBudget, StoredDailyBudget, VerdictCache
from cali.core.clock import FakeClock


def test_cache_serves_a_repeat_until_the_ttl() -> None:
    clock = FakeClock()
    cache: VerdictCache[str] = VerdictCache(clock, ttl_s=60)
    assert cache.get("fp") is None
    cache.put("fp", "verdict")
    clock.advance(59)
    assert cache.get("fp") == "verdict"
    clock.advance(1)
    assert cache.get("fp") is None
    assert "fp" not in cache
    assert (cache.hits, cache.misses) == (1, 2)


def test_cache_evicts_the_least_recently_used() -> None:
    cache: VerdictCache[int] = VerdictCache(FakeClock(), ttl_s=60, max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_put_again_refreshes_the_ttl() -> None:
    clock = FakeClock()
    cache: VerdictCache[int] = VerdictCache(clock, ttl_s=10)
    cache.put("a", 1)
    clock.advance(8)
    cache.put("a", 2)
    clock.advance(8)
    assert cache.get("a") == 2


def test_budget_spends_then_refuses() -> None:
    budget = DailyBudget(FakeClock(datetime(2026, 11, 21, 10, tzinfo=UTC)), max_calls=2)
    assert budget.try_spend() and budget.try_spend()
    assert not budget.try_spend()
    assert (budget.used, budget.remaining) == (2, 0)


def test_budget_resets_at_utc_midnight() -> None:
    clock = FakeClock(datetime(2026, 11, 21, 23, 59, 0, tzinfo=UTC))
    budget = DailyBudget(clock, max_calls=1)
    assert budget.try_spend()
    clock.advance(59)
    assert not budget.try_spend()
    clock.advance(1)  # 00:00:00 UTC
    assert budget.remaining == 1 and budget.try_spend()


def test_budget_day_is_the_utc_day_whatever_the_clock_zone() -> None:
    from datetime import timedelta, timezone

    plus2 = timezone(timedelta(hours=2))
    clock = FakeClock(datetime(2026, 11, 22, 1, 30, tzinfo=plus2))  # 23:30 UTC on the 21st
    budget = DailyBudget(clock, max_calls=1)
    assert budget.to_state()["day"] == "2026-11-21"


def test_budget_state_round_trip_same_day_only() -> None:
    clock = FakeClock(datetime(2026, 11, 21, 10, tzinfo=UTC))
    first = DailyBudget(clock, max_calls=3)
    first.try_spend(2)
    state = first.to_state()
    assert state == {"day": "2026-11-21", "used": 2}

    restarted = DailyBudget(clock, max_calls=3)
    restarted.load_state(state)
    assert restarted.remaining == 1

    clock.advance(24 * 3600)
    next_day = DailyBudget(clock, max_calls=3)
    next_day.load_state(state)
    assert next_day.remaining == 3


@pytest.mark.parametrize("state", [None, {}, {"day": "nope", "used": 1}, {"day": "2026-11-21"},
                                   {"day": "2026-11-21", "used": "x"}])
def test_budget_ignores_broken_state(state: dict | None) -> None:
    budget = DailyBudget(FakeClock(datetime(2026, 11, 21, tzinfo=UTC)), max_calls=2)
    budget.load_state(state)
    assert budget.remaining == 2


def test_zero_budget_turns_the_llm_off() -> None:
    assert not DailyBudget(FakeClock(), max_calls=0).try_spend()


# --- the shared budget in a state store ----------------------------------------------------------------

class VersionedMemory:
    """An in-memory StateStore with versions and conditional saves, as the SQLite and DynamoDB adapters."""

    def __init__(self, conflict_always: bool = False) -> None:
        self.items: dict[str, tuple[dict, int]] = {}
        self.conflict_always = conflict_always
        self.lock = threading.Lock()

    def load_versioned(self, key):
        with self.lock:
            return self.items.get(key)

    def save(self, key, value, expected_version=None):
        from cali.state import VersionConflict

        with self.lock:
            current = self.items.get(key, ({}, 0))[1]
            if self.conflict_always or (expected_version is not None and expected_version != current):
                raise VersionConflict(key, expected_version or 0, current)
            self.items[key] = (dict(value), current + 1)
            return current + 1


def stored(store, clock, max_calls=3, **kw):
    return StoredDailyBudget(store, clock, max_calls=max_calls, sleep=lambda s: None, **kw)


def test_stored_budget_is_shared_by_replicas_and_survives_a_restart() -> None:
    store, clock = VersionedMemory(), FakeClock(datetime(2026, 11, 26, 23, 0, tzinfo=UTC))
    a, b = stored(store, clock), stored(store, clock)
    assert a.left is None  # nothing taken yet: the gauge waits for the first take
    assert [a.try_spend(), b.try_spend()] == [True, True] and (a.left, b.left) == (2, 1)
    assert a.try_spend() and a.left == 0
    assert not b.try_spend() and b.left == 0 and not a.try_spend()
    restarted = stored(store, clock)
    assert not restarted.try_spend() and restarted.used() == 3
    assert store.items["llm-budget/2026-11-26"][0] == {"day": "2026-11-26", "used": 3, "max_calls": 3}


def test_stored_budget_resets_with_the_utc_day() -> None:
    store, clock = VersionedMemory(), FakeClock(datetime(2026, 11, 26, 23, 59, tzinfo=UTC))
    budget = stored(store, clock, max_calls=1)
    assert budget.try_spend() and not budget.try_spend()
    clock.advance(120)
    assert budget.key() == "llm-budget/2026-11-27" and budget.try_spend()


def test_stored_budget_never_overspends_under_concurrency() -> None:
    store, clock = VersionedMemory(), FakeClock(datetime(2026, 11, 26, 12, tzinfo=UTC))
    replicas = [stored(store, clock, max_calls=100, attempts=1000) for _ in range(8)]
    granted: list[bool] = []
    lock = threading.Lock()

    def worker(budget: StoredDailyBudget) -> None:
        for _ in range(40):
            ok = budget.try_spend()
            with lock:
                granted.append(ok)

    threads = [threading.Thread(target=worker, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 100 and len(granted) == 320
    assert replicas[0].used() == 100


def test_stored_budget_fails_closed_when_every_attempt_loses() -> None:
    budget = stored(VersionedMemory(conflict_always=True), FakeClock(), attempts=4)
    with pytest.raises(BudgetContended, match="4 attempts"):
        budget.try_spend()
    assert budget.conflicts == 4


def test_a_spend_larger_than_what_is_left_takes_nothing() -> None:
    store = VersionedMemory()
    budget = stored(store, FakeClock(), max_calls=3)
    assert budget.try_spend(2) and not budget.try_spend(2) and budget.used() == 2
