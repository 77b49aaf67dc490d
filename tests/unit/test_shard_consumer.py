import threading

import orjson
import pytest

from cali.core.archive import decode_jsonl_gz
from cali.core.clock import FakeClock
from cali.service.shard_consumer import ConsumerOptions, ShardConsumer
from tests.unit.fakes import FakeShard, MemoryArchive, MemoryCheckpoints, MemoryState, Recorder


def line(i: int, level: str = "INFO") -> bytes:
    return orjson.dumps({"time": f"2026-11-26 12:00:{i % 60:02d}.000", "level": level, "service": "orders-api",
                         "message": f"order {i} done"}) + b"\n"


def consumer(shard, archive=None, checkpoints=None, state=None, send=None, **opt):
    return ShardConsumer(stream="s", shard_id="shardId-000000000000", owner="t", source=shard,
                         archive=archive or MemoryArchive(), checkpoints=checkpoints or MemoryCheckpoints(),
                         state=state or MemoryState(), send=send or Recorder(), clock=FakeClock(),
                         options=ConsumerOptions(flush_max_records=3, **opt))


def drain(c):
    c.open()
    while c.step() >= 0:
        pass


def test_reads_to_shard_end_archives_dlqs_and_checkpoints():
    data = [line(0), line(1, "ERROR"), b"{not json\n", line(3, "WARN"), "\xff".encode("latin-1"), line(5)]
    shard, arch, cps, rec = FakeShard(data, closed=True), MemoryArchive(), MemoryCheckpoints(), Recorder()
    c = consumer(shard, arch, cps, send=rec)
    drain(c)
    raw = [row for k, v in arch.objects.items() if k.startswith("raw/") for row in decode_jsonl_gz(v)]
    dlq = [row for k, v in arch.objects.items() if k.startswith("dlq/") for row in decode_jsonl_gz(v)]
    assert len(raw) == 4 and {d["reason"] for d in dlq} == {"bad_json", "bad_utf8"}
    assert [c.record.level.value for b in rec.batches for c in b] == ["ERROR", "WARN"]
    assert cps.get_checkpoint("s", "shardId-000000000000") == "105"
    assert cps.is_shard_ended("s", "shardId-000000000000") and c.status.state == "shard_end"


def test_no_checkpoint_when_archive_write_fails():
    cps = MemoryCheckpoints()
    c = consumer(FakeShard([line(i) for i in range(5)], closed=True), MemoryArchive(fail=True), cps)
    c.open()
    with pytest.raises(OSError):
        while c.step() >= 0:
            pass
    assert cps.get_checkpoint("s", "shardId-000000000000") is None


def test_no_checkpoint_when_tracker_does_not_ack():
    def refuse(_):
        raise TimeoutError("tracker down")

    cps = MemoryCheckpoints()
    c = consumer(FakeShard([line(0, "ERROR")], closed=True), checkpoints=cps, send=refuse)
    c.open()
    with pytest.raises(TimeoutError):
        c.step()
    assert cps.get_checkpoint("s", "shardId-000000000000") is None


class CrashingCheckpoints(MemoryCheckpoints):
    def put_checkpoint(self, stream, shard_id, sequence, owner):
        raise RuntimeError("crash between the archive write and the checkpoint")


def test_replay_of_a_crashed_flush_overwrites_the_same_key_even_with_other_page_sizes():
    data, state = [line(i) for i in range(7)], MemoryState()
    first = MemoryArchive()
    c1 = consumer(FakeShard(data, page=2), first, CrashingCheckpoints(), state)
    c1.open()
    c1.step()
    with pytest.raises(RuntimeError):
        c1.step()  # 4 records buffered >= 3: flush writes the object, then the checkpoint fails
    (crashed_key,) = first.objects
    second, cps = MemoryArchive(), MemoryCheckpoints()
    c2 = consumer(FakeShard(data, page=5, closed=True), second, cps, state)  # GetRecords pages differ on replay
    drain(c2)
    assert crashed_key in second.objects
    assert second.objects[crashed_key] == first.objects[crashed_key]
    rows = [r for v in second.objects.values() for r in decode_jsonl_gz(v)]
    assert len(rows) == 7 and cps.get_checkpoint("s", "shardId-000000000000") == "106"


def test_duplicates_dropped_by_event_id():
    rec = Recorder()
    c = consumer(FakeShard([line(1, "ERROR"), line(1, "ERROR")], closed=True), send=rec)
    drain(c)
    assert c.status.duplicates == 1 and sum(len(b) for b in rec.batches) == 1


class StopAfter(threading.Event):
    """A stop event that turns set after `n` checks (wait() never sleeps)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def is_set(self) -> bool:
        self.n -= 1
        return self.n < 0

    def wait(self, timeout=None) -> bool:
        return self.is_set()


def test_a_stop_flushes_what_is_buffered_and_checkpoints_it():
    arch, cps = MemoryArchive(), MemoryCheckpoints()
    c = consumer(FakeShard([line(0), line(1)], closed=False), arch, cps, flush_interval_s=1000)
    assert c.run(StopAfter(2)) == "stopped"
    (body,) = arch.objects.values()
    assert len(decode_jsonl_gz(body)) == 2 and cps.get_checkpoint("s", "shardId-000000000000") == "101"


def test_a_tracker_failure_resends_the_same_candidates_and_loses_nothing(monkeypatch):
    import cali.service.shard_consumer as sc

    monkeypatch.setattr(sc.random, "random", lambda: 0.0)
    calls = []

    def flaky_send(candidates):
        calls.append([c.record.event_id for c in candidates])
        if len(calls) == 1:
            raise TimeoutError("tracker did not ack")

    arch, cps = MemoryArchive(), MemoryCheckpoints()
    c = consumer(FakeShard([line(0, "ERROR"), line(1), line(2, "WARN")], closed=True), arch, cps, send=flaky_send)
    assert c.run(StopAfter(100)) == "shard_end"
    assert len(calls) == 2 and calls[0] == calls[1] and len(calls[1]) == 2  # re-sent whole, not dropped
    rows = [r for v in arch.objects.values() for r in decode_jsonl_gz(v)]
    assert len(rows) == 3 and c.status.duplicates == 0
    assert cps.get_checkpoint("s", "shardId-000000000000") == "102"


class FlakyArchive(MemoryArchive):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def put_batch(self, key, body):
        if self.failures:
            self.failures -= 1
            raise OSError("S3 503 SlowDown")
        super().put_batch(key, body)


def test_run_survives_a_failing_archive_and_loses_nothing(monkeypatch):
    import cali.service.shard_consumer as sc

    monkeypatch.setattr(sc.random, "random", lambda: 0.0)
    arch, cps = FlakyArchive(failures=2), MemoryCheckpoints()
    c = consumer(FakeShard([line(i) for i in range(7)], page=2, closed=True), arch, cps, poll_interval_s=0.3)
    waits = []

    class Stop(threading.Event):
        def wait(self, timeout=None):
            waits.append(timeout)
            return False

    assert c.run(Stop()) == "shard_end"
    rows = [r for v in arch.objects.values() for r in decode_jsonl_gz(v)]
    assert len(rows) == 7 and len({r["event_id"] for r in rows}) == 7
    assert cps.get_checkpoint("s", "shardId-000000000000") == "106"
    assert c.status.errors == 2 and c.status.last_error.startswith("OSError")
    assert [w for w in waits if w in (0.25, 0.5)] == [0.25, 0.5]  # backoff doubled between the two failures
