"""SQLite checkpoints and state: never-backwards checkpoints, versions, several connections and processes."""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import random
import sqlite3
import threading

import pytest

from cali.core.clock import FakeClock
from cali.state import SEQUENCE_WIDTH, StateBackendError, VersionConflict
from cali.state.sqlite_checkpoints import SqliteCheckpoints
from cali.state.sqlite_state import SqliteState

pytestmark = pytest.mark.integration

STREAM = "cali-logs"
SHARD = "shardId-000000000001"
# Real Kinesis sequence numbers are 56 digits; these two differ in length, so string order != numeric order.
SEQ_56 = "49590338271490256608559692538361571095921575989136588898"
SEQ_57 = "1" + "0" * 56


@pytest.fixture
def db(tmp_path):
    return tmp_path / "state" / "cali.sqlite"


def leased(cp, owner="a", shard=SHARD):
    """Checkpoints are fenced by the lease: a writer holds it first."""
    lease = cp.get_lease(STREAM, shard)
    assert cp.take_lease(STREAM, shard, owner, lease.counter) is not None
    return cp


def test_checkpoint_round_trip_and_wal(db):
    cp = leased(SqliteCheckpoints(db, clock=FakeClock()), "reader-a")
    assert cp.get_checkpoint(STREAM, SHARD) is None
    assert cp.put_checkpoint(STREAM, SHARD, SEQ_56, "reader-a") is True
    assert cp.get_checkpoint(STREAM, SHARD) == SEQ_56
    assert cp.get_checkpoint(STREAM, "shardId-000000000002") is None
    mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    row = sqlite3.connect(db).execute("SELECT seq, owner, updated_at FROM leases").fetchone()
    assert len(row[0]) == SEQUENCE_WIDTH
    assert row[1:] == ("reader-a", "2026-01-01T00:00:00+00:00")


def test_checkpoint_never_moves_backwards(db, caplog):
    cp = leased(SqliteCheckpoints(db))
    assert cp.put_checkpoint(STREAM, SHARD, "100", "a")
    with caplog.at_level(logging.WARNING, logger="cali.state.sqlite_checkpoints"):
        assert cp.put_checkpoint(STREAM, SHARD, "99", "a") is False
    assert "stale checkpoint ignored" in caplog.text and "99" in caplog.text
    assert cp.put_checkpoint(STREAM, SHARD, "100", "a") is False  # same value: a no-op, not a warning
    assert cp.get_checkpoint(STREAM, SHARD) == "100"
    assert cp.put_checkpoint(STREAM, SHARD, "101", "a")
    assert cp.get_checkpoint(STREAM, SHARD) == "101"


def test_long_sequences_compare_as_numbers(db):
    cp = leased(SqliteCheckpoints(db))
    assert SEQ_57 < "9" * 56  # as strings, the larger number sorts first
    assert cp.put_checkpoint(STREAM, SHARD, SEQ_57, "a")
    assert cp.put_checkpoint(STREAM, SHARD, "9" * 56, "a") is False
    assert cp.get_checkpoint(STREAM, SHARD) == SEQ_57
    biggest = "9" * 129  # the Kinesis API pattern allows 129 digits
    assert cp.put_checkpoint(STREAM, SHARD, biggest, "a")
    assert cp.get_checkpoint(STREAM, SHARD) == biggest
    with pytest.raises(ValueError, match="129 digits"):
        cp.put_checkpoint(STREAM, SHARD, "1" * 130, "a")
    with pytest.raises(ValueError, match="decimal"):
        cp.put_checkpoint(STREAM, SHARD, "12a", "a")


def test_shard_end(db):
    cp = SqliteCheckpoints(db)
    assert cp.is_shard_ended(STREAM, SHARD) is False
    cp.mark_shard_end(STREAM, "shardId-empty")  # a shard closed before any checkpoint
    assert cp.is_shard_ended(STREAM, "shardId-empty")
    leased(cp, shard="shardId-empty")
    assert cp.put_checkpoint(STREAM, "shardId-empty", "5", "a")  # a row without seq still accepts one
    leased(cp)
    cp.put_checkpoint(STREAM, SHARD, "42", "a")
    cp.mark_shard_end(STREAM, SHARD)
    cp.mark_shard_end(STREAM, SHARD)  # idempotent
    assert cp.is_shard_ended(STREAM, SHARD)
    assert cp.get_checkpoint(STREAM, SHARD) == "42"
    assert SqliteCheckpoints(db).is_shard_ended(STREAM, SHARD)


def test_two_connections_racing_threads(db):
    writers = [SqliteCheckpoints(db, busy_timeout_s=10) for _ in range(2)]
    leased(writers[0], "reader")
    seqs = [str(10**55 + i) for i in range(200)]
    chunks = [random.Random(n).sample(seqs, len(seqs)) for n in range(2)]

    def run(cp, chunk, owner):
        for s in chunk:
            cp.put_checkpoint(STREAM, SHARD, s, owner)

    # Two connections of one lease holder (a reader's flusher and its restart, say) race on the same row.
    threads = [threading.Thread(target=run, args=(w, c, "reader")) for w, c in zip(writers, chunks, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writers[0].get_checkpoint(STREAM, SHARD) == seqs[-1]
    assert writers[1].get_checkpoint(STREAM, SHARD) == seqs[-1]


def test_one_instance_shared_by_threads(db):
    # A Ray actor with max_concurrency > 1 calls one adapter from several threads.
    cp = leased(SqliteCheckpoints(db), "reader")
    seqs = [str(10**55 + i) for i in range(100)]
    threads = [threading.Thread(target=lambda n=n: [cp.put_checkpoint(STREAM, SHARD, s, "reader")
                                                    for s in random.Random(n).sample(seqs, len(seqs))])
               for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cp.get_checkpoint(STREAM, SHARD) == seqs[-1]


def _process_writer(path: str, seed: int, seqs: list[str]) -> None:
    cp = SqliteCheckpoints(path, busy_timeout_s=20)
    for s in random.Random(seed).sample(seqs, len(seqs)):
        cp.put_checkpoint(STREAM, SHARD, s, "reader")


def test_several_processes_share_the_file(db):
    seqs = [str(10**55 + 7 * i) for i in range(150)]
    leased(SqliteCheckpoints(db), "reader")  # create the file before the race
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_writer, args=(str(db), n, seqs)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert SqliteCheckpoints(db).get_checkpoint(STREAM, SHARD) == seqs[-1]


def test_adapter_pickles_without_its_connection(db):
    cp = leased(SqliteCheckpoints(db))
    cp.put_checkpoint(STREAM, SHARD, "7", "a")
    clone = pickle.loads(pickle.dumps(cp))  # as Ray does when an actor receives it
    assert clone.get_checkpoint(STREAM, SHARD) == "7"


def test_healthcheck(db, tmp_path):
    assert SqliteCheckpoints(db).healthcheck().ok
    assert SqliteState(db).healthcheck().ok
    blocker = tmp_path / "file"
    blocker.write_text("x")
    bad = SqliteCheckpoints(blocker / "cali.sqlite").healthcheck()  # parent is a file
    assert not bad.ok and "writable" in bad.detail


def test_state_round_trip_and_versions(db):
    st = SqliteState(db)
    assert st.load("throttle") is None
    value = {"groups": {"g1": {"count": 3, "last": "2026-01-01T00:00:00Z"}}, "ünï": [1, 2.5, None, True]}
    assert st.save("throttle", value) == 1
    assert st.load("throttle") == value
    assert st.load_versioned("throttle") == (value, 1)
    assert st.save("throttle", {"v": 2}) == 2  # the port signature: unconditional
    assert st.save("throttle", {"v": 3}, expected_version=2) == 3
    assert st.load("throttle") == {"v": 3}


def test_state_version_conflict(db):
    a, b = SqliteState(db), SqliteState(db)
    assert a.save("miner", {"clusters": []}, expected_version=0) == 1
    with pytest.raises(VersionConflict) as exc:
        b.save("miner", {"clusters": ["x"]}, expected_version=0)
    assert exc.value.actual == 1
    _, version = b.load_versioned("miner")
    assert b.save("miner", {"clusters": ["b"]}, expected_version=version) == 2
    with pytest.raises(VersionConflict, match="expected version 1, found version 2"):
        a.save("miner", {"clusters": ["a"]}, expected_version=1)  # a's copy is stale: it must reload
    with pytest.raises(VersionConflict, match="no item"):
        a.save("other", {}, expected_version=3)
    assert a.load("miner") == {"clusters": ["b"]}


def test_state_refuses_non_json(db):
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        SqliteState(db).save("k", {"x": object()})
    with pytest.raises(TypeError, match="must be a dict"):
        SqliteState(db).save("k", [1, 2])  # type: ignore[arg-type]


def test_checkpoints_and_state_share_one_file(db):
    leased(SqliteCheckpoints(db)).put_checkpoint(STREAM, SHARD, "1", "a")
    SqliteState(db).save("k", {"a": 1})
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"leases", "items"} <= tables


def test_lock_timeout_is_a_clear_error(db):
    cp = leased(SqliteCheckpoints(db, busy_timeout_s=0.1))
    cp.put_checkpoint(STREAM, SHARD, "1", "a")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StateBackendError, match="write lock"):
            cp.put_checkpoint(STREAM, SHARD, "2", "a")
    finally:
        holder.execute("ROLLBACK")
    assert cp.put_checkpoint(STREAM, SHARD, "2", "a")
