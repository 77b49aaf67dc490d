"""The shipper against kinesalite: every event exactly once across rotation, restart and partial failures."""

from __future__ import annotations

import base64
import os
import re
from collections import Counter
from pathlib import Path

import orjson
import pytest

from cali.core.clock import FakeClock
from cali.core.parsing import Source
from cali.ship.shipper import Shipper
from cali.sources.kinesis import KinesisSource, read_all

pytestmark = pytest.mark.integration

ID = re.compile(r"id=(\d+)")


def logback(i: int) -> str:
    head = (f"2026-11-26 12:00:{i % 60:02d}.123 ERROR [orders-api,4bf92f3577b34da6,00f067aa0ba902b7] 1 --- "
            f"[nio-8080-exec-7] c.a.orders.OrderController : order failed id={i}\n")
    if i % 3:
        return head
    return head + ("java.lang.IllegalStateException: payment declined\n"
                   "\tat c.a.orders.OrderService.place(OrderService.java:42)\n"
                   "\tat c.a.orders.OrderController.create(OrderController.java:18)\n")


def python(i: int) -> str:
    head = f"2026-11-26 12:00:{i % 60:02d},456 WARNING [inventory-worker] inventory.sync: slow sync id={i}\n"
    if i % 4:
        return head
    return head + ('Traceback (most recent call last):\n  File "/app/sync.py", line 7, in run\n'
                   "    client.fetch()\nTimeoutError: timed out\n")


def pino(i: int) -> str:
    return orjson.dumps({"level": 30, "time": 1795700000000 + i, "msg": f"GET /cart id={i}",
                         "service": "web-bff"}).decode() + "\n"


WRITERS = {"orders-api": ("logback", logback), "inventory-worker": ("python", python), "web-bff": ("pino", pino)}


def sources(log_dir: Path) -> list[Source]:
    return [Source(svc, fmt, str(log_dir / f"{svc}.log")) for svc, (fmt, _) in WRITERS.items()]


def write(log_dir: Path, service: str, ids: range, *, path: Path | None = None) -> None:
    _, render = WRITERS[service]
    with open(path or log_dir / f"{service}.log", "a") as f:
        f.write("".join(render(i) for i in ids))


def shipped(stream: KinesisSource) -> Counter:
    """(service, id) -> times seen on the stream."""
    seen: Counter = Counter()
    for rec in read_all(stream):
        for line in rec.data.splitlines():
            event = orjson.loads(line)
            text = event.get("message") or event.get("msg") or event.get("log")
            seen[(event["service"], int(ID.search(text).group(1)))] += 1
    return seen


def expected(ids_by_service: dict[str, range]) -> Counter:
    return Counter({(svc, i): 1 for svc, ids in ids_by_service.items() for i in ids})


class Run:
    """Drives a shipper on a fake clock: each step advances past the multiline flush timeout."""

    def __init__(self, shipper: Shipper, clock: FakeClock) -> None:
        self.shipper, self.clock = shipper, clock

    def steps(self, n: int = 3, dt: float = 0.6) -> None:
        for _ in range(n):
            self.shipper.run_once(self.clock.monotonic())
            self.clock.advance(dt)


def make(stream: KinesisSource, log_dir: Path, **kw) -> Run:
    clock = FakeClock()
    shipper = Shipper(sources(log_dir), stream, log_dir / "offsets.json", host="test-host", clock=clock,
                      rotate_wait_s=1.0, **kw)
    return Run(shipper, clock)


def test_every_event_exactly_once_with_multiline_joined(fresh_stream, tmp_path):
    ids = {svc: range(0, 120) for svc in WRITERS}
    for svc, r in ids.items():
        write(tmp_path, svc, r)
    run = make(fresh_stream, tmp_path)
    run.steps()
    assert shipped(fresh_stream) == expected(ids)
    stats = run.shipper.stats
    assert stats["events"] == stats["records_put"] == 360 and stats["dlq"] == 0
    shards = {r.partition_key for r in read_all(fresh_stream)}
    assert len(shards) == 360  # partition key "event": one hash per event, spread over shards

    records = [orjson.loads(r.data) for r in read_all(fresh_stream)]
    crash = next(r for r in records if r["service"] == "orders-api" and "id=0\n" in r["message"])
    assert "\tat c.a.orders.OrderService.place" in crash["message"]
    assert crash["host"] == "test-host" and crash["@ingested"].endswith("Z")
    offsets = orjson.loads((tmp_path / "offsets.json").read_bytes())["files"]
    for src in sources(tmp_path):
        assert offsets[src.path][0]["offset"] == os.path.getsize(src.path)


def test_partial_last_line_waits_for_its_newline(fresh_stream, tmp_path):
    path = tmp_path / "web-bff.log"
    line = pino(1)
    path.write_text(pino(0) + line[:20])
    run = make(fresh_stream, tmp_path)
    run.steps()
    assert shipped(fresh_stream) == expected({"web-bff": range(0, 1)})
    with open(path, "a") as f:
        f.write(line[20:])
    run.steps()
    assert shipped(fresh_stream) == expected({"web-bff": range(0, 2)})


def test_rotation_mid_run_loses_and_duplicates_nothing(fresh_stream, tmp_path):
    for svc in WRITERS:
        write(tmp_path, svc, range(0, 50))
    run = make(fresh_stream, tmp_path)
    run.steps(1)
    for svc in WRITERS:
        path = tmp_path / f"{svc}.log"
        # The writer still appends to the renamed file before reopening, and leaves a multiline event
        # open at the end of it: all of it must come through the old inode.
        with open(path, "a") as old:
            os.rename(path, tmp_path / f"{svc}.log.1")
            old.write("".join(WRITERS[svc][1](i) for i in range(50, 60)))
        write(tmp_path, svc, range(60, 100))
    run.steps(4)
    assert shipped(fresh_stream) == expected({svc: range(0, 100) for svc in WRITERS})
    # The drained rotated generation is no longer owed: one generation per path in the offsets file.
    offsets = orjson.loads((tmp_path / "offsets.json").read_bytes())["files"]
    assert all(len(gens) == 1 for gens in offsets.values())


def test_restart_resumes_without_loss_or_duplicates(fresh_stream, tmp_path):
    for svc in WRITERS:
        write(tmp_path, svc, range(0, 40))
    run = make(fresh_stream, tmp_path)
    run.shipper.run_once(run.clock.monotonic())  # the last event of each file is still held by its joiner
    run.shipper.drain()
    run.shipper.close()
    before = shipped(fresh_stream)
    assert sum(before.values()) < 120 and max(before.values()) == 1

    for svc in WRITERS:  # while stopped: more lines, a partial line, and a rotation for one file
        write(tmp_path, svc, range(40, 60))
    os.rename(tmp_path / "web-bff.log", tmp_path / "web-bff.log.1")
    write(tmp_path, "web-bff", range(60, 80))
    with open(tmp_path / "orders-api.log", "a") as f:
        f.write(logback(60)[:30])

    again = make(fresh_stream, tmp_path)
    again.steps(4)
    want = {"orders-api": range(0, 60), "inventory-worker": range(0, 60), "web-bff": range(0, 80)}
    assert shipped(fresh_stream) == expected(want)


def test_partial_failures_resend_only_the_failed_records(fresh_stream, tmp_path):
    flaky = FlakyClient(fresh_stream.client, fail_every=3, failing_calls=1)
    stream = KinesisSource(flaky, fresh_stream.stream)
    write(tmp_path, "web-bff", range(0, 30))
    run = make(stream, tmp_path, backoff_base_s=0.01)
    run.steps(3)
    assert shipped(fresh_stream) == expected({"web-bff": range(0, 30)})
    first, later = flaky.calls[0], [r["Data"] for call in flaky.calls[1:] for r in call]
    failed = {rec["Data"] for n, rec in enumerate(first) if n % 3 == 0}
    succeeded = {rec["Data"] for n, rec in enumerate(first) if n % 3}
    assert len(first) == 29  # the 30th line waits in the joiner until the flush timeout
    assert failed <= set(flaky.calls[1][i]["Data"] for i in range(len(flaky.calls[1])))
    assert not succeeded & set(later), "a record PutRecords accepted was sent again"
    assert len(later) == len(failed) + 1
    assert run.shipper.stats["retries"] == len(failed) and run.shipper.stats["records_put"] == 30


def test_oversized_event_goes_to_the_dlq_and_the_rest_flows(fresh_stream, tmp_path):
    big = orjson.dumps({"level": 50, "msg": "huge id=1 " + "x" * (1024 * 1024 + 10)}).decode() + "\n"
    (tmp_path / "web-bff.log").write_text(pino(0) + big + pino(2))
    run = make(fresh_stream, tmp_path)
    run.steps()
    assert shipped(fresh_stream) == Counter({("web-bff", 0): 1, ("web-bff", 2): 1})
    dlq = [orjson.loads(line) for line in (tmp_path / "shipper-dlq.jsonl").read_bytes().splitlines()]
    assert len(dlq) == 1 and "exceeds" in dlq[0]["reason"]
    assert b"huge id=1" in base64.b64decode(dlq[0]["data_b64"])


def test_bounded_buffer_still_ships_everything(fresh_stream, tmp_path):
    write(tmp_path, "inventory-worker", range(0, 200))
    run = make(fresh_stream, tmp_path, max_inflight_records=16, max_batch_records=7)
    run.steps(3)
    assert shipped(fresh_stream) == expected({"inventory-worker": range(0, 200)})
    assert run.shipper.stats["put_calls"] >= 200 // 7


class FlakyClient:
    """Wraps a boto3 Kinesis client: in the first `failing_calls` PutRecords, every n-th entry is
    answered with ProvisionedThroughputExceededException instead of being written."""

    def __init__(self, client, fail_every: int, failing_calls: int) -> None:
        self.client, self.fail_every, self.failing_calls = client, fail_every, failing_calls
        self.calls: list[list[dict]] = []
        self.meta = client.meta

    def __getattr__(self, name):
        return getattr(self.client, name)

    def put_records(self, StreamName: str, Records: list[dict]) -> dict:  # noqa: N803 - boto3's names
        self.calls.append(list(Records))
        if len(self.calls) > self.failing_calls:
            return self.client.put_records(StreamName=StreamName, Records=Records)
        keep = [r for n, r in enumerate(Records) if n % self.fail_every]
        real = iter(self.client.put_records(StreamName=StreamName, Records=keep)["Records"])
        out = [{"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded"}
               if n % self.fail_every == 0 else next(real) for n in range(len(Records))]
        return {"FailedRecordCount": sum("ErrorCode" in r for r in out), "Records": out}
