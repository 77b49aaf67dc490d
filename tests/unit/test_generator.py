"""The log generator: deterministic, varied, and every event it writes parses into a LogRecord."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cali.core.parsing import FORMATS, MultilineJoiner, parse_event
from cali.core.records import LogRecord, normalize
from cali.gen import LogGenerator, run_generate
from cali.gen.services import SERVICES
from cali.gen.sources import DEMO_SOURCES

SRC = {s.service: s for s in DEMO_SOURCES}


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a = list(LogGenerator(seed=7, rate=100).lines(30))
    b = list(LogGenerator(seed=7, rate=100).lines(30))
    c = list(LogGenerator(seed=8, rate=100).lines(30))
    assert a == b and a != c


def test_services_and_ecosystems() -> None:
    services = {svc for svc, _ in LogGenerator(seed=1, rate=200).lines(20)}
    assert len(services) >= 6
    assert len({SERVICES[s].ecosystem for s in services}) >= 4


def _records(lines: list[tuple[str, str]]) -> list[LogRecord]:
    joiners = {s: MultilineJoiner(FORMATS[src.format]) for s, src in SRC.items()}
    events: list[tuple[str, str]] = []
    for svc, line in lines:
        events += [(svc, e) for e in joiners[svc].feed(line, 0.0)]
    for svc, j in joiners.items():
        events += [(svc, e) for e in j.flush(0.0, force=True)]
    out = []
    for svc, text in events:
        raw = parse_event(
            FORMATS[SRC[svc].format], text, service=svc, host="h", ingested="2026-11-26T13:00:00Z"
        )
        out.append(LogRecord.model_validate(normalize(raw)))
    return out


def test_long_run_has_incidents_and_every_event_parses() -> None:
    gen = LogGenerator(seed=3, rate=60, incident_every_s=5)
    lines = list(gen.lines(5 * 12))
    kinds = {i["kind"] for i in gen.incidents}
    assert len(kinds) >= 8, kinds
    records = _records(lines)
    levels = Counter(r.level.value for r in records)
    assert levels["INFO"] and levels["WARN"] and levels["ERROR"] and levels["FATAL"]
    assert sum(1 for r in records if r.stack) >= 20  # multiline traces joined
    # per service, timestamps strictly increase, so identical lines never collide
    by_svc: dict[str, list[datetime]] = {}
    for r in records:
        by_svc.setdefault(r.service, []).append(r.timestamp)
    for svc, ts in by_svc.items():
        if svc not in ("edge-nginx", "api-gateway"):  # nginx prints seconds; Go panics carry no time
            assert all(x < y for x, y in zip(ts, ts[1:], strict=False)), svc


def test_run_generate_writes_rotating_files(tmp_path: Path) -> None:
    summary = run_generate(
        tmp_path, seed=2, rate=300, duration=20, realtime=False, max_bytes=20_000, backups=2
    )
    assert summary["lines"] > summary["events"] > summary["alertable_events"] > 0
    assert summary["incidents"]
    for src in DEMO_SOURCES:
        assert (tmp_path / src.path).exists()
    rotated = sorted(p.name for p in tmp_path.glob("orders-api.log*"))
    assert rotated == ["orders-api.log", "orders-api.log.1", "orders-api.log.2"]
    assert (tmp_path / "orders-api.log.1").stat().st_size <= 20_000 + 16_384
    # a rotation never splits an event: every file starts with a header line
    for p in tmp_path.glob("orders-api.log*"):
        assert FORMATS["logback"]._start_match(p.read_text().split("\n", 1)[0])


def test_run_generate_is_byte_identical_for_a_seed(tmp_path: Path) -> None:
    for d in ("a", "b"):
        run_generate(tmp_path / d, seed=5, rate=100, duration=10, realtime=False, max_bytes=0, backups=0)
    for src in DEMO_SOURCES:
        assert (tmp_path / "a" / src.path).read_bytes() == (tmp_path / "b" / src.path).read_bytes()


def test_run_generate_stdout_and_stop_event(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    stop.set()
    assert (
        run_generate(
            None, seed=1, rate=10, duration=None, realtime=True, max_bytes=0, backups=0, stop_event=stop
        )["lines"]
        == 0
    )
    summary = run_generate(
        None,
        seed=1,
        rate=50,
        duration=2,
        realtime=False,
        max_bytes=0,
        backups=0,
        start=datetime(2026, 1, 1, tzinfo=UTC),
    )
    out = capsys.readouterr().out.splitlines()
    assert len(out) == summary["lines"] and all(" | " in line for line in out)
