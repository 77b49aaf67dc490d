import threading

import orjson
import pytest

from cali.core.archive import decode_jsonl_gz
from cali.core.clock import FakeClock
from cali.core.ports import LeaseLost, Rejected, Unavailable
from cali.service.shard_consumer import ConsumerOptions, ShardConsumer
from tests.unit.fakes import FakeShard, MemoryArchive, MemoryCheckpoints, MemoryState, Recorder

SHARD = "shardId-000000000000"


def line(i: int, level: str = "INFO", **extra) -> bytes:
    return orjson.dumps({"time": f"2026-11-26 12:00:{i % 60:02d}.000", "level": level, "service": "orders-api",
                         "message": f"order {i} done", **extra}) + b"\n"


def consumer(shard, archive=None, checkpoints=None, state=None, send=None, clock=None, **opt):
    cps = checkpoints or MemoryCheckpoints()
    if cps.get_lease("s", SHARD).owner is None:
        cps.take_lease("s", SHARD, "t", cps.get_lease("s", SHARD).counter)
    clock = clock or FakeClock()
    return ShardConsumer(stream="s", shard_id=SHARD, owner="t", source=shard,
                         archive=archive if archive is not None else MemoryArchive(), checkpoints=cps,
                         state=state or MemoryState(), send=send or Recorder(), clock=clock,
                         options=ConsumerOptions(**{"flush_max_records": 3, **opt}), sleep=clock.advance)


def drain(c):
    c.open()
    while c.step() >= 0:
        pass


def rows_of(arch, prefix="raw/"):
    return [row for k, v in sorted(arch.objects.items()) if k.startswith(prefix) for row in decode_jsonl_gz(v)]


def test_reads_to_shard_end_archives_dlqs_and_checkpoints():
    data = [line(0), line(1, "ERROR"), b"{not json\n", line(3, "WARN"), "\xff".encode("latin-1"), line(5)]
    shard, arch, cps, rec = FakeShard(data, closed=True), MemoryArchive(), MemoryCheckpoints(), Recorder()
    c = consumer(shard, arch, cps, send=rec)
    drain(c)
    raw, dlq = rows_of(arch), rows_of(arch, "dlq/")
    assert len(raw) == 4 and {d["reason"] for d in dlq} == {"bad_json", "bad_utf8"}
    assert [c.record.level.value for b in rec.batches for c in b] == ["ERROR", "WARN"]
    # Alert-worthy rows carry the incident the trackers counted them in; the others do not.
    assert [r.get("incident_key") for r in raw] == [None, "orders-api|ERROR|g1", "orders-api|WARN|g1", None]
    assert [r["event_id"] for r in raw] == [f"{SHARD}:{s}:0" for s in (100, 101, 103, 105)]
    assert cps.get_checkpoint("s", SHARD) == "105"
    assert cps.is_shard_ended("s", SHARD) and c.status.state == "shard_end"


def test_candidates_carry_their_position_for_replay_detection():
    rec = Recorder()
    drain(consumer(FakeShard([line(0), line(1, "ERROR")], closed=True), send=rec))
    (batch,) = rec.batches
    assert [(c.shard_id, c.position) for c in batch] == [(SHARD, (101, 0))]


def test_no_checkpoint_when_archive_write_fails():
    cps = MemoryCheckpoints()
    c = consumer(FakeShard([line(i) for i in range(5)], closed=True), MemoryArchive(fail=True), cps)
    c.open()
    for _ in range(10):
        assert c.step() >= 0  # the shard is not done while its records are not archived
    assert cps.get_checkpoint("s", SHARD) is None and not cps.is_shard_ended("s", SHARD)
    assert c.status.last_error.startswith("archive: OSError") and c.status.records == 5


def test_identical_lines_are_two_events_not_a_replay():
    rec, arch = Recorder(), MemoryArchive()
    same = line(1, "ERROR")
    drain(consumer(FakeShard([same, same], closed=True), arch, send=rec))
    assert sum(len(b) for b in rec.batches) == 2 and len(rows_of(arch)) == 2


def test_a_producer_retry_is_recognised_by_where_the_line_was_written():
    origin = {"host": "h1", "log_file": "/var/log/app.log", "log_offset": 4096}
    retry = line(1, "ERROR", **origin)
    other_file = line(1, "ERROR", **{**origin, "log_file": "/var/log/other.log"})
    no_origin = line(1, "ERROR")
    rec, arch = Recorder(), MemoryArchive()
    c = consumer(FakeShard([retry, retry, other_file, no_origin, no_origin], closed=True), arch, send=rec)
    drain(c)
    # The second put of the same line is dropped; lines without an origin are never dropped on a guess.
    assert c.status.duplicates == 1 and len(rows_of(arch)) == 4 and sum(len(b) for b in rec.batches) == 4
    origins = [cand.origin for b in rec.batches for cand in b]
    assert origins[0] and origins[1] and origins[0] != origins[1] and origins[2:] == [None, None]


class CrashingCheckpoints(MemoryCheckpoints):
    def put_checkpoint(self, stream, shard_id, sequence, owner):
        raise RuntimeError("crash between the archive write and the checkpoint")


def test_replay_of_a_crashed_flush_overwrites_the_same_key_even_with_other_page_sizes():
    data, state = [line(i) for i in range(7)], MemoryState()
    first = MemoryArchive()
    c1 = consumer(FakeShard(data, page=2), first, CrashingCheckpoints(), state)
    c1.open()
    c1.step()
    c1.step()  # 4 records buffered >= 3: the batch is written, then the checkpoint fails
    assert "crash between" in c1.status.last_error  # and the process dies here
    (crashed_key,) = first.objects
    second, cps = MemoryArchive(), MemoryCheckpoints()
    c2 = consumer(FakeShard(data, page=5, closed=True), second, cps, state)  # GetRecords pages differ on replay
    drain(c2)
    assert crashed_key in second.objects
    assert second.objects[crashed_key] == first.objects[crashed_key]
    assert len(rows_of(second)) == 7 and cps.get_checkpoint("s", SHARD) == "106"


def test_a_child_shard_without_checkpoint_starts_at_trim_horizon_whatever_start_says():
    asked = []

    class Shard(FakeShard):
        def shard_iterator(self, shard_id, *, after_sequence=None, start="TRIM_HORIZON", timestamp=None):
            asked.append(start)
            return super().shard_iterator(shard_id, after_sequence=after_sequence)

    consumer(Shard([line(0)]), start="LATEST").open()
    c = consumer(Shard([line(0)]), start="LATEST")
    c.is_child = True
    c.open()
    assert asked == ["LATEST", "TRIM_HORIZON"]


def test_a_lost_lease_fences_the_checkpoint_and_stops_the_reader():
    cps = MemoryCheckpoints()
    c = consumer(FakeShard([line(i) for i in range(5)], closed=True), checkpoints=cps)
    cps.rows[("s", SHARD)]["owner"] = "another-cluster"
    c.open()
    with pytest.raises(LeaseLost):
        while c.step() >= 0:
            pass
    assert cps.get_checkpoint("s", SHARD) is None and c.lost.is_set()


def test_tracker_unavailable_is_retried_then_the_batch_is_acked():
    calls = []

    def flaky(candidates):
        calls.append([c.record.event_id for c in candidates])
        if len(calls) < 3:
            raise Unavailable("tracker restarting")
        return ["k"] * len(candidates)

    arch, cps = MemoryArchive(), MemoryCheckpoints()
    c = consumer(FakeShard([line(0, "ERROR"), line(1), line(2, "WARN")], closed=True), arch, cps, send=flaky)
    drain(c)
    assert len(calls) == 3 and calls[0] == calls[1] == calls[2] and len(calls[0]) == 2  # re-sent whole
    assert len(rows_of(arch)) == 3 and c.status.set_aside == 0 and cps.get_checkpoint("s", SHARD) == "102"


def test_trackers_unavailable_too_long_set_the_batch_aside_instead_of_wedging():
    def down(candidates):
        raise Unavailable("state store unreachable")

    arch, cps = MemoryArchive(), MemoryCheckpoints()
    c = consumer(FakeShard([line(0, "ERROR"), line(1)], closed=True), arch, cps, send=down, send_give_up_s=60)
    drain(c)
    (aside,) = rows_of(arch, "dlq/")
    assert aside["reason"] == "alerting_unavailable" and "state store unreachable" in aside["error"]
    assert orjson.loads(__import__("base64").b64decode(aside["data_b64"]))["message"] == "order 0 done"
    assert len(rows_of(arch)) == 2 and cps.get_checkpoint("s", SHARD) == "101" and c.status.set_aside == 1


def test_a_poison_record_is_isolated_and_set_aside_and_its_batch_mates_are_counted():
    seen: list[str] = []

    def tracker(candidates):
        if any(c.record.message == "order 3 done" for c in candidates):
            raise Rejected("StateTooLarge: item over 400 KB")
        seen.extend(c.record.message for c in candidates)
        return ["k"] * len(candidates)

    arch = MemoryArchive()
    data = [line(i, "ERROR") for i in range(6)]
    c = consumer(FakeShard(data, page=6, closed=True), arch, send=tracker, flush_max_records=10)
    drain(c)
    assert seen == [f"order {i} done" for i in (0, 1, 2, 4, 5)]
    (aside,) = rows_of(arch, "dlq/")
    assert aside["reason"] == "alerting_rejected" and aside["sequence_number"] == "103"
    assert len(rows_of(arch)) == 6 and c.status.set_aside == 1


class DownArchive(MemoryArchive):
    def __init__(self) -> None:
        super().__init__()
        self.down = True

    def put_batch(self, key, body):
        if self.down:
            raise OSError("S3 503 ServiceUnavailable")
        super().put_batch(key, body)


def test_an_archive_outage_does_not_stop_alerting_and_loses_nothing():
    """S3 down: reading and alerting go on within the memory budget, then alert-ahead past it; once S3 is
    back, the skipped records are read again and archived, and the trackers drop the repeats."""
    data = [line(i, "ERROR" if i % 4 == 0 else "INFO") for i in range(40)]
    arch, cps, rec = DownArchive(), MemoryCheckpoints(), Recorder()
    c = consumer(FakeShard(data, page=4, closed=True), arch, cps, send=rec, flush_max_records=4,
                 max_pending_bytes=1500)
    c.open()
    for _ in range(20):
        c.step()
    alerted = {cand.position for b in rec.batches for cand in b}
    assert len(alerted) == 10  # every ERROR was sent while S3 was down
    assert c.status.alert_ahead and cps.get_checkpoint("s", SHARD) is None and c.status.pending_bytes <= 1500 + 400
    arch.down = False
    while c.step() >= 0:
        pass
    rows = rows_of(arch)
    assert [r["message"] for r in rows] == [f"order {i} done" for i in range(40)]  # all of them, once, in order
    assert cps.get_checkpoint("s", SHARD) == "139" and cps.is_shard_ended("s", SHARD)
    resent = [cand.position for b in rec.batches for cand in b]
    assert set(resent) == alerted and len(resent) > len(alerted)  # re-read ones were sent again


class StopAfter(threading.Event):
    """A stop event that turns set after `n` checks."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def is_set(self) -> bool:
        self.n -= 1
        return self.n < 0

    def wait(self, timeout=None) -> bool:
        return self.is_set()


def test_a_stop_writes_what_is_buffered_and_checkpoints_it():
    arch, cps = MemoryArchive(), MemoryCheckpoints()
    c = consumer(FakeShard([line(0), line(1)], closed=False), arch, cps, flush_interval_s=1000)
    assert c.run(StopAfter(3)) == "stopped"
    assert len(rows_of(arch)) == 2 and cps.get_checkpoint("s", SHARD) == "101"


def test_run_survives_a_failing_archive_and_loses_nothing():
    class Flaky(MemoryArchive):
        failures = 2

        def put_batch(self, key, body):
            if self.failures:
                self.failures -= 1
                raise OSError("S3 503 SlowDown")
            super().put_batch(key, body)

    arch, cps = Flaky(), MemoryCheckpoints()
    c = consumer(FakeShard([line(i) for i in range(7)], page=2, closed=True), arch, cps, poll_interval_s=0.2)
    assert c.run(threading.Event()) == "shard_end"
    rows = rows_of(arch)
    assert len(rows) == 7 and len({r["event_id"] for r in rows}) == 7
    assert cps.get_checkpoint("s", SHARD) == "106"
    assert c.status.errors == 2 and c.status.last_error.startswith("archive: OSError")
