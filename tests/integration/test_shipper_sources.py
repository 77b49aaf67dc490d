"""The shipper on kinesalite with configured sources: a glob whose files appear later, a user format, origins."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from cali.core.clock import FakeClock
from cali.core.parsing import Source
from cali.ship.settings import ship_config
from cali.ship.shipper import Shipper
from cali.sources.kinesis import KinesisSource, read_all

pytestmark = pytest.mark.integration

# A team's own format: "<ISO time> <LEVEL> <message>", continuation lines indented.
MYAPP = {"name": "myapp", "header": r"\A(?P<time>\d{4}-\d{2}-\d{2}T\S+) (?P<level>[A-Z]+) (?P<message>[\s\S]*)",
         "start": r"\A\d{4}-\d{2}-\d{2}T", "defaults": {"env": "test"}}


def event(i: int, stack: bool = False) -> str:
    head = f"2026-11-26T12:00:{i % 60:02d}Z {'ERROR' if stack else 'INFO'} step id={i}\n"
    return head + ("  at one\n  at two\n" if stack else "")


def records(stream: KinesisSource) -> list[dict]:
    return [orjson.loads(line) for r in read_all(stream) for line in r.data.splitlines()]


def make(stream: KinesisSource, tmp: Path, pattern: str) -> tuple[Shipper, FakeClock]:
    cfg = ship_config([{"service": "myapp", "path": pattern, "format": "myapp"}], [MYAPP])
    clock = FakeClock()
    shipper = Shipper(cfg.to_sources(), stream, tmp / "offsets.json", host="h", clock=clock, rotate_wait_s=1.0,
                      formats=cfg.catalog(), rescan_interval_s=0.5)
    return shipper, clock


def steps(shipper: Shipper, clock: FakeClock, n: int = 4) -> None:
    for _ in range(n):
        shipper.run_once(clock.monotonic())
        clock.advance(0.6)


def test_a_glob_source_picks_up_new_files_and_never_reships_a_rotated_name(fresh_stream, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text(event(0) + event(1, stack=True))
    shipper, clock = make(fresh_stream, tmp_path, str(logs / "*.log*"))
    steps(shipper, clock)
    (logs / "b.log").write_text(event(2) + event(3))  # appears after start
    os.rename(logs / "a.log", logs / "a.log.1")  # rotated: the glob matches the new name too
    (logs / "a.log").write_text(event(4, stack=True))
    steps(shipper, clock, 6)
    shipper.close()
    got = sorted((r["log_file"], r["message"].split("\n")[0]) for r in records(fresh_stream))
    assert got == sorted([
        (str(logs / "a.log"), "step id=0"), (str(logs / "a.log"), "step id=1"),
        (str(logs / "b.log"), "step id=2"), (str(logs / "b.log"), "step id=3"),
        (str(logs / "a.log"), "step id=4")])
    for r in records(fresh_stream):
        assert (r["service"], r["env"], r["host"]) == ("myapp", "test", "h")
    joined = next(r for r in records(fresh_stream) if r["message"].startswith("step id=1"))
    assert joined["message"] == "step id=1\n  at one\n  at two" and joined["level"] == "ERROR"


def test_a_relative_glob_gives_relative_log_files(fresh_stream, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("apps").mkdir()
    Path("apps/x.log").write_text(event(0))
    shipper, clock = make(fresh_stream, tmp_path, "apps/*.log")
    steps(shipper, clock)
    shipper.close()
    assert [r["log_file"] for r in records(fresh_stream)] == ["apps/x.log"]


# (file content, the (message head, log_offset) of each record): log_offset is where Fluent Bit's
# tail puts offset_key for a multiline event, the end of its last line; a line before the file's
# first event start is an event of its own, at its own start, and an empty one is no event at all
# (each case checked against Fluent Bit 5.1.1 with the same format).
ORIGIN_CASES = [
    ("one line", event(0), [("step id=0", 36)]),
    ("joined stack", event(0, stack=True) + event(1),
     [("step id=0", 55), ("step id=1", 91)]),
    ("orphans first", "  at orphan\n\n" + event(2),
     [("  at orphan", 0), ("step id=2", 49)]),
    ("unparsed line joins the event before it", event(3) + "no header here\n",
     [("step id=3", 51)]),
]


@pytest.mark.parametrize(("case", "content", "want"), ORIGIN_CASES, ids=[c[0] for c in ORIGIN_CASES])
def test_origin_fields_are_the_path_and_fluent_bits_offset(fresh_stream, tmp_path, case, content, want):
    path = tmp_path / "app.log"
    path.write_text(content)
    shipper, clock = make(fresh_stream, tmp_path, str(path))
    steps(shipper, clock)
    shipper.close()
    got = sorted(((r.get("message") or "").split("\n")[0], r["log_offset"], r["log_file"])
                 for r in records(fresh_stream))
    assert got == sorted((m, off, str(path)) for m, off in want)


def test_a_restart_resends_with_the_same_origin(fresh_stream, tmp_path):
    # What the consumer dedupes on: the same line put twice carries the same (host, log_file,
    # log_offset, message).
    path = tmp_path / "app.log"
    path.write_text(event(0) + event(1, stack=True) + event(2))
    shipper, clock = make(fresh_stream, tmp_path, str(path))
    steps(shipper, clock)
    shipper.close()
    (tmp_path / "offsets.json").unlink()  # as if the shipper crashed before its commit
    again, clock = make(fresh_stream, tmp_path, str(path))
    steps(again, clock)
    again.close()
    ids = [(r["host"], r["log_file"], r["log_offset"], r["message"]) for r in records(fresh_stream)]
    assert len(ids) == 6 and len(set(ids)) == 3


def test_sources_of_builtin_formats_keep_working_with_a_catalog(fresh_stream, tmp_path):
    path = tmp_path / "svc.log"
    path.write_text('{"level":30,"msg":"hello"}\n')
    cfg = ship_config([{"service": "svc", "path": str(path), "format": "pino"}])
    shipper = Shipper([Source("svc", "pino", str(path))], fresh_stream, tmp_path / "o.json", host="h",
                      clock=FakeClock(), formats=cfg.catalog())
    shipper.run_once()
    shipper.run_once(shipper.clock.monotonic() + 2)
    shipper.close()
    (rec,) = records(fresh_stream)
    assert (rec["msg"], rec["log_offset"], rec["service"]) == ("hello", 27, "svc")
