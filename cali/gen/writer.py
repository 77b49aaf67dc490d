"""Writes generated traffic to one rotating file per service (or stdout), optionally in real time."""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from cali.core.parsing import Source
from cali.gen.generator import ALERTABLE, LogGenerator
from cali.gen.sources import DEMO_SOURCES


class RotatingFile:
    """logging.handlers.RotatingFileHandler's scheme: rename <f> to <f>.1 (shifting older ones), reopen."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._fh: IO[str] = open(path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115
        self._size = self._fh.tell()

    def write_event(self, lines: list[str]) -> None:
        # A whole event is written at once, so a rotation never splits a stack trace across files.
        data = "\n".join(lines) + "\n"
        n = len(data.encode("utf-8")) if not data.isascii() else len(data)
        if self.max_bytes > 0 and self.backups > 0 and self._size and self._size + n > self.max_bytes:
            self.rotate()
        self._fh.write(data)
        self._size += n

    def rotate(self) -> None:
        self._fh.close()
        for i in range(self.backups - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{i}")
            if src.exists():
                os.replace(src, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self._fh = open(self.path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115
        self._size = 0

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def run_generate(
    out_dir: Path | None,
    *,
    seed: int,
    rate: float,
    duration: float | None,
    realtime: bool,
    max_bytes: int,
    backups: int,
    stop_event: Any = None,
    incident_every_s: float = 20.0,
    start: datetime | None = None,
    sources: Sequence[Source] = DEMO_SOURCES,
) -> dict:
    """Stdout lines are prefixed "<service> | " (one stream carries every service).

    Each source's file is `out_dir / source.path`: an absolute path stays as it is, a relative one
    lands under out_dir.

    Real-time runs stamp events from the wall clock; batch runs start at a fixed time so the same
    seed gives byte-identical files.
    """
    if duration is None and not realtime and stop_event is None:
        raise ValueError(
            "a run without --duration must be --realtime (or have a stop_event), else it never ends"
        )
    if realtime and start is None:
        start = datetime.now(UTC)
    gen = LogGenerator(seed=seed, rate=rate, incident_every_s=incident_every_s, start=start, sources=sources)
    render_rng = random.Random(seed ^ 0x5EED)
    files: dict[str, RotatingFile] = {}
    if out_dir is not None:
        for src in sources:
            if src.service in files:
                raise ValueError(f"service {src.service!r} is configured twice; the generator writes one file "
                                 "per service")
            path = out_dir / src.path
            path.parent.mkdir(parents=True, exist_ok=True)
            files[src.service] = RotatingFile(path, max_bytes, backups)
    counts = {"lines": 0, "events": 0, "alertable_events": 0}
    wall0 = time.monotonic()
    since_flush = 0
    try:
        for ev in gen.events(duration):
            if stop_event is not None and stop_event.is_set():
                break
            if realtime:
                delay = (ev.ts_ms / 1000 - gen.start.timestamp()) - (time.monotonic() - wall0)
                if delay > 0.005:
                    for f in files.values():
                        f.flush()
                    sys.stdout.flush()
                    if stop_event is not None:
                        if stop_event.wait(delay):
                            break
                    else:
                        time.sleep(delay)
            lines = gen.render(ev, render_rng)
            if out_dir is None:
                sys.stdout.write("".join(f"{ev.service} | {ln}\n" for ln in lines))
            else:
                files[ev.service].write_event(lines)
            counts["lines"] += len(lines)
            counts["events"] += 1
            counts["alertable_events"] += ev.level in ALERTABLE
            since_flush += 1
            if realtime and since_flush >= 200:
                for f in files.values():
                    f.flush()
                since_flush = 0
    finally:
        for f in files.values():
            f.close()
        sys.stdout.flush()
    return {**counts, "incidents": list(gen.incidents)}
