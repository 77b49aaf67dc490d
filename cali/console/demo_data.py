"""Demo data for the console: generated logs taken through the real decode, grouping and throttle code.

`cali console --demo-data` and the console's end-to-end test use it to fill an index without Kinesis or
Ray: the generator's eight services and scripted incidents (cali.gen), parsed as the shipper parses them,
decoded and validated as a reader does, grouped and throttled by an IncidentBook as a tracker does; every
alert is merged into its incident as the Alerter does after delivery, with its analysis when an
analyzer is given (the Serve app's Analyzer through a DeploymentHandle, or anything with that shape).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cali.core.alerts import AlertKind, analysis_alert
from cali.core.clock import FakeClock
from cali.core.decode import decode_batch
from cali.core.filtering import AlertFilter
from cali.core.incidents import Candidate, IncidentBook
from cali.core.index import log_document
from cali.core.records import PREPARED, LogRecord

SHARD = "shardId-000000000000"


@dataclass
class _Raw:
    data: bytes
    sequence: str
    arrived_at: datetime | None = None
    partition_key: str = "demo"


def generated_payloads(*, seed: int, minutes: float, rate: float, start: datetime,
                       incident_every_s: float = 60.0) -> list[bytes]:
    """Kinesis payloads (one JSON event + newline) of `minutes` of generated logs, as the shipper makes them."""
    from cali.core.parsing import FORMATS, MultilineJoiner, parse_event, to_kinesis_data
    from cali.gen import run_generate
    from cali.gen.sources import DEMO_SOURCES

    out: list[bytes] = []
    with tempfile.TemporaryDirectory(prefix="cali-demo-") as d:
        run_generate(Path(d), seed=seed, rate=rate, duration=minutes * 60, realtime=False, max_bytes=1 << 40,
                     backups=0, incident_every_s=incident_every_s, start=start, sources=DEMO_SOURCES)
        for src in DEMO_SOURCES:
            fmt = FORMATS[src.format]
            joiner = MultilineJoiner(fmt)
            path = Path(d) / src.path
            if not path.exists():
                continue
            texts: list[str] = []
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    texts += joiner.feed(line.rstrip("\n"), 0.0)
            texts += joiner.flush(0.0, force=True)
            out += [to_kinesis_data(parse_event(fmt, t, service=src.service, host=f"{src.service}-1",
                                                ingested=start.isoformat())) for t in texts]
    return out


def load_demo(index: Any, *, seed: int = 7, minutes: float = 30.0, rate: float = 20.0,
              now: datetime | None = None, window_s: float = 300.0,
              levels: tuple[str, ...] = ("INFO", "WARN", "ERROR", "FATAL"),
              analyze: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, int]:
    """Fills `index` (the index port) with the last `minutes` of demo traffic ending at `now`."""
    from cali.bootstrap import service_groups
    from cali.service.followup import record_of

    now = (now or datetime.now(UTC)).replace(microsecond=0)
    start = now - timedelta(minutes=minutes)
    payloads = generated_payloads(seed=seed, minutes=minutes, rate=rate, start=start)
    decoded = decode_batch([_Raw(p, str(10**20 + i), start) for i, p in enumerate(payloads)], SHARD, now)
    order = sorted(range(len(decoded.rows)), key=lambda i: decoded.rows[i]["timestamp"])
    clock = FakeClock(start)
    book = IncidentBook(clock, groups=service_groups(None), window_s=window_s)  # type: ignore[arg-type]
    accepts, alerts = AlertFilter(), []
    rows = [decoded.rows[i] for i in order]
    for i, row in enumerate(rows):
        if row["timestamp"] > clock.now():
            clock.advance((row["timestamp"] - clock.now()).total_seconds())
        if row["level"] in accepts.maybe and accepts.accepts(row["service"], row["level"], row["message"]):
            # Positions in time order: the book takes a position at or before the last one as a replay.
            got = book.ingest([Candidate(LogRecord.model_validate(row, context=PREPARED), SHARD, (i + 1, 0))])
            row["incident_key"] = got.keys[0]
            alerts += got.alerts
        else:
            alerts += book.tick()
    clock.advance(max(0.0, (now - clock.now()).total_seconds()))
    alerts += book.tick()
    written = 0
    kept = [r for r in rows if r["level"] in levels]
    for k in range(0, len(kept), 5_000):
        written += index.write_logs([log_document(r) for r in kept[k:k + 5_000]]).written
    analysed = 0
    for alert in sorted(alerts, key=lambda a: a.created_at):
        index.add_alert(alert)
        if alert.kind is AlertKind.FIRST and analyze is not None:
            index.add_alert(analysis_alert(alert, analyze(record_of(alert)), alert.created_at))
            analysed += 1
    return {"records": len(rows), "indexed": written, "alerts": len(alerts), "analysed": analysed,
            "incidents": len({a.incident_key for a in alerts})}

