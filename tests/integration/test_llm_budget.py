"""The daily LLM budget in the real state stores: one count for every replica and process, SQLite and DynamoDB
(moto server), never overspent under races, and the analysis says when it is spent or unreachable."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import uuid
from datetime import UTC, datetime

import pytest

from cali.analysis.analyst import Analyst
from cali.analysis.budget import StoredDailyBudget
from cali.analysis.model import Analysis
from cali.core.clock import FakeClock
from cali.core.records import LogRecord
from cali.llm.openai_chat import OpenAIChat
from cali.state.dynamodb_state import DynamoDBState
from cali.state.sqlite_state import SqliteState
from tests.support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.integration

NOON = datetime(2026, 11, 26, 12, tzinfo=UTC)
RECORD = LogRecord(timestamp=NOON, level="ERROR", service="orders-api",
                   message="HikariPool-1 - Connection is not available, request timed out after 30000ms.")
RETRIEVAL = Analysis(probable_cause="Similar to INC-1.", category="db-pool-exhausted",
                     top_categories=["db-pool-exhausted"], confidence=0.7, abstained=False)


def _spender(path: str, prefix: str, tries: int, out: multiprocessing.Queue) -> None:
    budget = StoredDailyBudget(SqliteState(path), FakeClock(NOON), max_calls=60, prefix=prefix, attempts=200)
    out.put(sum(budget.try_spend() for _ in range(tries)))


def test_sqlite_budget_is_one_count_across_processes(tmp_path) -> None:
    path = str(tmp_path / "state.db")
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_spender, args=(path, "llm-budget", 30, out)) for _ in range(4)]
    for p in procs:
        p.start()
    granted = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert sum(granted) == 60  # 120 attempts, 60 allowed: none overspent, none lost
    assert SqliteState(path).load("llm-budget/2026-11-26") == {"day": "2026-11-26", "used": 60, "max_calls": 60}


def _analyst(fake: FakeOpenAI, budget: StoredDailyBudget) -> Analyst:
    llm = OpenAIChat(base_url=fake.base_url, model="fake-model", timeout_s=5, max_retries=0, mode_cache={})
    return Analyst(llm, ["db-pool-exhausted", "db-unreachable"], timeout_s=10, budget=budget)


def test_two_analyzer_replicas_spend_one_sqlite_budget(tmp_path) -> None:
    path = tmp_path / "state.db"
    with FakeOpenAI("ok") as fake:
        first = _analyst(fake, StoredDailyBudget(SqliteState(path), FakeClock(NOON), max_calls=1))
        second = _analyst(fake, StoredDailyBudget(SqliteState(path), FakeClock(NOON), max_calls=1))
        a = asyncio.run(first.analyze(RECORD, [], RETRIEVAL))
        b = asyncio.run(second.analyze(RECORD, [], RETRIEVAL))
        calls = len(fake.chat_requests())
    assert a.mode == "llm" and calls == 1
    assert b.mode == "retrieval-only" and b.degraded_reason == "llm-daily-budget-exhausted (1 calls/day)"


def test_dynamodb_budget_under_concurrent_replicas(stack, aws_clients) -> None:
    prefix = f"llm-budget-{uuid.uuid4().hex[:8]}"
    granted: list[int] = []
    lock = threading.Lock()

    def replica() -> None:
        budget = StoredDailyBudget(DynamoDBState(aws_clients["dynamodb"], stack.state_table), FakeClock(NOON),
                                   max_calls=20, prefix=prefix, attempts=200)
        n = sum(budget.try_spend() for _ in range(10))
        with lock:
            granted.append(n)

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(granted) == 20
    later = StoredDailyBudget(DynamoDBState(aws_clients["dynamodb"], stack.state_table), FakeClock(NOON),
                              max_calls=20, prefix=prefix)
    assert later.used() == 20 and not later.try_spend()  # a restarted replica finds the day spent


def test_an_unreachable_budget_store_means_no_llm_call(stack, aws_clients) -> None:
    missing = StoredDailyBudget(DynamoDBState(aws_clients["dynamodb"], "no-such-table"), FakeClock(NOON),
                                max_calls=10)
    with FakeOpenAI("ok") as fake:
        result = asyncio.run(_analyst(fake, missing).analyze(RECORD, [], RETRIEVAL))
        calls = len(fake.chat_requests())
    assert calls == 0
    assert result.mode == "retrieval-only" and result.degraded_reason == "llm-budget-unavailable (StateBackendError)"
