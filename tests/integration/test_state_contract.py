"""One contract for both backends: the lease table (SQLite file, DynamoDB on moto) and the state store."""

from __future__ import annotations

import threading
import uuid

import pytest

from cali.core.clock import FakeClock
from cali.core.ports import LeaseLost
from cali.service.leases import LeaseHolder, LeaseTaker
from cali.state import StateTooLarge

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        from cali.state.sqlite_checkpoints import SqliteCheckpoints
        from cali.state.sqlite_state import SqliteState

        return SqliteCheckpoints(tmp_path / "checkpoints.db"), SqliteState(tmp_path / "state.db")
    aws = request.getfixturevalue("aws_clients")
    stack = request.getfixturevalue("stack")
    from cali.state.dynamodb_checkpoints import DynamoDBCheckpoints
    from cali.state.dynamodb_state import DynamoDBState

    return (DynamoDBCheckpoints(aws["dynamodb"], stack.checkpoint_table),
            DynamoDBState(aws["dynamodb"], stack.state_table))


@pytest.fixture
def leases(backend):
    return backend[0]


@pytest.fixture
def state(backend):
    return backend[1]


@pytest.fixture
def stream():
    return f"s-{uuid.uuid4().hex[:8]}"


def test_a_free_lease_is_taken_once(leases, stream):
    assert leases.get_lease(stream, "sh1").owner is None and leases.get_lease(stream, "sh1").counter == 0
    a = leases.take_lease(stream, "sh1", "cluster-a", 0)
    assert a is not None and a.owner == "cluster-a" and a.counter == 1
    assert leases.take_lease(stream, "sh1", "cluster-b", 0) is None  # b saw counter 0: too late


def test_renewals_move_the_counter_and_only_the_holder_renews(leases, stream):
    leases.take_lease(stream, "sh1", "a", 0)
    assert leases.renew_lease(stream, "sh1", "a", 1) == 2
    assert leases.renew_lease(stream, "sh1", "a", 1) is None  # a stale counter is a lost lease
    assert leases.renew_lease(stream, "sh1", "b", 2) is None
    assert leases.get_lease(stream, "sh1").counter == 2


def test_checkpoints_are_fenced_by_the_lease(leases, stream):
    leases.take_lease(stream, "sh1", "a", 0)
    assert leases.put_checkpoint(stream, "sh1", "100", "a")
    lease = leases.get_lease(stream, "sh1")
    assert leases.take_lease(stream, "sh1", "b", lease.counter) is not None  # b steals it (expired)
    with pytest.raises(LeaseLost, match="held by b"):
        leases.put_checkpoint(stream, "sh1", "200", "a")  # a zombie writes nothing
    assert leases.put_checkpoint(stream, "sh1", "200", "b") and leases.get_checkpoint(stream, "sh1") == "200"


def test_release_hands_over_at_once_and_keeps_the_checkpoint(leases, stream):
    taken = leases.take_lease(stream, "sh1", "a", 0)
    leases.put_checkpoint(stream, "sh1", "7", "a")
    assert leases.release_lease(stream, "sh1", "a", taken.counter)
    free = leases.get_lease(stream, "sh1")
    assert free.owner is None and free.checkpoint == "7"
    assert leases.take_lease(stream, "sh1", "b", free.counter).owner == "b"


def test_the_taker_steals_only_what_stood_still_for_the_lease_time(leases, stream):
    clock = FakeClock()
    a, b = LeaseTaker(leases, stream, "a", 10, clock), LeaseTaker(leases, stream, "b", 10, clock)
    held = a.try_take("sh1")
    assert held is not None and b.try_take("sh1") is None  # b starts watching the counter
    holder = LeaseHolder(leases, stream, "sh1", "a", held.counter, 10, clock)
    clock.advance(9)
    assert holder.renew()  # a renews: the counter moves, b's watch starts over
    assert b.try_take("sh1") is None
    clock.advance(9)
    assert b.try_take("sh1") is None  # 9 s since b saw the new counter: not expired yet
    clock.advance(2)  # a stopped renewing 11 s ago
    stolen = b.try_take("sh1")
    assert stolen is not None and stolen.owner == "b"
    assert not holder.renew() and holder.lost.is_set()
    assert a.try_take("sh1") is None  # a must now wait, like anyone else


def test_two_takers_racing_for_a_free_lease_one_wins(leases, stream):
    wins = []

    def take(owner):
        if LeaseTaker(leases, stream, owner, 10, FakeClock()).try_take("sh1"):
            wins.append(owner)

    threads = [threading.Thread(target=take, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and leases.get_lease(stream, "sh1").owner == wins[0]


def test_a_scope_is_written_and_read_as_items(state, stream):
    scope = f"tracker/{stream}/0"
    assert state.load_scope(scope) == {}
    state.commit(scope, {"w|a": {"count": 1}, "w|b": {"count": 2}, "wm|shard-1": {"seq": "9", "line": 0}})
    state.commit(scope, {"w|a": {"count": 3}}, deletes={"w|b"})
    assert state.load_scope(scope) == {"w|a": {"count": 3}, "wm|shard-1": {"seq": "9", "line": 0}}
    state.save(scope, {"single": True})  # a single document under the same key does not show as an item
    assert "#" not in state.load_scope(scope) and state.load(scope) == {"single": True}


def test_a_large_commit_lands_whole(state, stream):
    scope = f"tracker/{stream}/big"
    items = {f"w|svc-{i % 50}|ERROR|g{i}": {"info": {"stack": "x" * 2000}, "n": i} for i in range(350)}
    state.commit(scope, items)  # more than one DynamoDB transaction can hold
    assert state.load_scope(scope) == items


def test_an_item_over_the_limit_is_refused_before_anything_is_written(state, stream):
    scope = f"tracker/{stream}/x"
    with pytest.raises(StateTooLarge, match="limit of one item"):
        state.commit(scope, {"ok": {"a": 1}, "huge": {"blob": "y" * 500_000}})
    assert state.load_scope(scope) == {}
