"""Shipper parsing throughput: join + header-parse + encode >= 1M generated lines on one core."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cali.core.parsing import FORMATS, MultilineJoiner, parse_event, to_kinesis_data
from cali.gen import run_generate
from cali.gen.sources import DEMO_SOURCES


def ship_file(path: Path, fmt_name: str, service: str) -> tuple[int, int, int]:
    """(lines, events, bytes of Kinesis data) for one tailed file."""
    fmt = FORMATS[fmt_name]
    joiner = MultilineJoiner(fmt)
    feed = joiner.feed
    ingested = "2026-11-26T12:00:00.000Z"
    lines = events = nbytes = 0
    with path.open(encoding="utf-8", newline="\n") as fh:
        for line in fh:
            lines += 1
            done = feed(line[:-1] if line[-1:] == "\n" else line, 0.0)
            for text in done:
                nbytes += len(
                    to_kinesis_data(parse_event(fmt, text, service=service, host="bench", ingested=ingested))
                )
                events += 1
    for text in joiner.flush(0.0, force=True):
        nbytes += len(
            to_kinesis_data(parse_event(fmt, text, service=service, host="bench", ingested=ingested))
        )
        events += 1
    return lines, events, nbytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--incident-every", type=float, default=2.0, help="seconds; small = more stack traces")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        duration = args.lines / args.rate * 0.97
        summary = run_generate(
            out,
            seed=42,
            rate=args.rate,
            duration=duration,
            realtime=False,
            max_bytes=0,
            backups=0,
            incident_every_s=args.incident_every,
            sources=DEMO_SOURCES,
        )
        while summary["lines"] < args.lines:  # top up in the rare case the estimate fell short
            duration *= 1.05
            for p in out.glob("*.log"):
                p.unlink()
            summary = run_generate(
                out,
                seed=42,
                rate=args.rate,
                duration=duration,
                realtime=False,
                max_bytes=0,
                backups=0,
                incident_every_s=args.incident_every,
            sources=DEMO_SOURCES,
            )
        gen_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in out.glob("*.log"))
        print(
            f"generated {summary['lines']:,} lines / {summary['events']:,} events "
            f"({summary['lines'] - summary['events']:,} continuation lines, {len(summary['incidents'])} "
            f"incidents), {size / 1e6:.1f} MB in {gen_s:.1f}s"
        )
        wall0, cpu0 = time.perf_counter(), time.process_time()
        lines = events = nbytes = 0
        for src in DEMO_SOURCES:
            n_l, n_e, n_b = ship_file(out / src.path, src.format, src.service)
            lines, events, nbytes = lines + n_l, events + n_e, nbytes + n_b
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        print(f"shipped {lines:,} lines -> {events:,} records ({nbytes / 1e6:.1f} MB of Kinesis data)")
        print(
            f"wall {wall:.2f}s  cpu {cpu:.2f}s  ->  {lines / wall:,.0f} lines/s  "
            f"{events / wall:,.0f} records/s "
            f"(one core; target >= 70,000 lines/s)"
        )


if __name__ == "__main__":
    main()
