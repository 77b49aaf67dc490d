"""The embedded index (SQLite WAL + FTS5): ingest on one core, and the console's queries at 1M records.

Documents are generated logs (cali.gen, eight services, stack traces) taken through the real decode path
and cali.core.index.log_document; to reach 1M they are repeated with new event ids, spread over 24 hours.
Ingest is timed in CPU seconds of this process (the machine is shared; wall seconds are printed too).
Queries are what the console's pages send (ConsoleService), each run `--repeat` times: p50/p95 wall ms.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def documents(n: int, now: datetime, seed: int = 3) -> list[dict]:
    from cali.console.demo_data import SHARD, _Raw, generated_payloads
    from cali.core.decode import decode_batch
    from cali.core.index import log_document

    start = now - timedelta(hours=1)
    payloads = generated_payloads(seed=seed, minutes=60, rate=min(n, 100_000) / 3600, start=start)
    rows = decode_batch([_Raw(p, str(10**20 + i), start) for i, p in enumerate(payloads)], SHARD, now).rows
    base = [log_document(r) for r in rows if r["level"] != "DEBUG"]
    out = []
    for copy in range(n // len(base) + 1):
        shift = timedelta(hours=copy % 24, seconds=copy)  # repeats go further back, over 24 hours
        for d in base:
            at = datetime.fromisoformat(d["@timestamp"].replace("Z", "+00:00")) - shift
            out.append(d | {"event_id": f"{d['event_id']}-{copy}",
                            "@timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z")})
            if len(out) == n:
                break
        if len(out) == n:
            break
    # In time order, as readers write them (records arrive roughly as they were logged).
    return sorted(out, key=lambda d: d["@timestamp"])


def percentiles(samples: list[float]) -> str:
    qs = statistics.quantiles(samples, n=20)
    return f"p50 {statistics.median(samples):.1f} ms, p95 {qs[18]:.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=2_000)
    ap.add_argument("--repeat", type=int, default=40)
    a = ap.parse_args()
    from hot_path import machine

    from cali.console.service import ConsoleService
    from cali.core.index import IncidentQuery
    from cali.index.sqlite_fts import SqliteIndex

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(f"machine: {machine()}")
    now = datetime.now(UTC).replace(microsecond=0)
    t = time.perf_counter()
    docs = documents(a.records, now)
    print(f"built {len(docs):,} documents in {time.perf_counter() - t:.1f}s")
    with tempfile.TemporaryDirectory() as d:
        ix = SqliteIndex(Path(d) / "index.db", max_bytes=1 << 40)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for k in range(0, len(docs), a.batch):
            ix.write_logs(docs[k:k + a.batch])
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        size = (Path(d) / "index.db").stat().st_size
        print(f"ingest, 1 core: {len(docs) / cpu:,.0f} records/s of CPU time ({len(docs) / wall:,.0f}/s wall, "
              f"batches of {a.batch}, file {size / 1e6:.0f} MB, {size / len(docs):.0f} bytes/record)")
        # Incidents, as the alerter writes them: a few hundred.
        from cali.console.demo_data import load_demo

        load_demo(ix, seed=5, minutes=60, rate=2, now=now)
        service = ConsoleService(ix, None, lambda: {})
        sample = docs[len(docs) // 2]
        key = ix.incidents(IncidentQuery(limit=1))[0]["incident_key"]
        cases = {
            "incident list": lambda: service.incidents(),
            "incident page (doc + 20 sample lines)": lambda: service.incident(key),
            "log search, a common word, 24 h": lambda: service.logs(text="request", minutes=1440),
            "log search, two words + service + level": lambda: service.logs(
                text=" ".join(sample["message"].split()[:2]), services=(sample["service"],), levels=("ERROR",),
                minutes=1440),
            "log search, a rare word, all time": lambda: service.logs(text="zzqx"),
            "logs, no words, newest 100": lambda: service.logs(),
            "logs, one service, ERROR, 24 h": lambda: service.logs(services=("payments-service",),
                                                                   levels=("ERROR",), minutes=1440),
            "trend by level, 24 h": lambda: service.trend(by="level", minutes=1440),
            "trend by service, WARN+, 24 h": lambda: service.trend(by="service", minutes=1440,
                                                                    levels=("WARN", "ERROR", "FATAL")),
        }
        print(f"console queries at {len(docs):,} records ({a.repeat} runs each):")
        worst = 0.0
        for name, call in cases.items():
            call()  # warm the page cache once
            samples = []
            for _ in range(a.repeat):
                t = time.perf_counter()
                call()
                samples.append((time.perf_counter() - t) * 1000)
            worst = max(worst, statistics.quantiles(samples, n=20)[18])
            print(f"  {name}: {percentiles(samples)}")
        print(f"worst p95: {worst:.1f} ms")
        ix.close()


if __name__ == "__main__":
    main()
