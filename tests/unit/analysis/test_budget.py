"""The answer cache (TTL, LRU) and the daily LLM budget, on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cali.analysis.budget import DailyBudget, VerdictCache
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
