"""Deterministic simulated log traffic: background lines from every service plus cycling incidents."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from cali.core.parsing import Source
from cali.gen.incidents import KINDS, IncidentKind
from cali.gen.services import SERVICES, Event, ServiceSpec, background_event, render
from cali.gen.sources import DEMO_SOURCES

DEFAULT_START = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
ALERTABLE = frozenset({"WARN", "ERROR", "FATAL"})


def _spec_for(source: Source) -> ServiceSpec:
    known = SERVICES.get(source.service)
    if known is not None and known.format == source.format:
        return known
    # A renamed service: borrow the traffic of the first known service printing the same format.
    for spec in SERVICES.values():
        if spec.format == source.format:
            return replace(spec, name=source.service)
    raise ValueError(
        f"the generator cannot print format {source.format!r} (service {source.service!r}); "
        f"it knows {sorted({s.format for s in SERVICES.values()})}"
    )


class LogGenerator:
    """Simulated time, no sleeping: the same seed gives byte-identical lines."""

    def __init__(
        self,
        seed: int = 0,
        rate: float = 200.0,
        incident_every_s: float = 20.0,
        start: datetime | None = None,
        sources: Sequence[Source] = DEMO_SOURCES,
        warn_share: float = 0.04,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be > 0 lines/s, got {rate}")
        self.seed = seed
        self.rate = rate
        self.incident_every_s = incident_every_s
        self.start = (start or DEFAULT_START).astimezone(UTC)
        self.specs = {s.service: _spec_for(s) for s in sources}
        self.kinds: list[IncidentKind] = [k for k in KINDS if k.service in self.specs]
        self.warn_share = warn_share
        self.incidents: list[dict] = []

    def events(self, seconds: float | None) -> Iterator[Event]:
        """Logical events in time order; runs forever when seconds is None."""
        rng = random.Random(self.seed)
        self.incidents = []
        specs = list(self.specs.values())
        cum = list(itertools.accumulate(s.weight for s in specs))
        base_ms = int(self.start.timestamp() * 1000)
        last_ms: dict[str, int] = {}
        heap: list[tuple[float, int, IncidentKind]] = []
        seq = itertools.count()
        next_incident = (
            self.incident_every_s / 2 if self.kinds and self.incident_every_s > 0 else float("inf")
        )
        cycle = 0
        t = 0.0

        def stamp(service: str, at: float) -> int:
            ms = max(base_ms + int(at * 1000), last_ms.get(service, 0) + 1)
            last_ms[service] = ms
            return ms

        while True:
            t += rng.expovariate(self.rate)
            while next_incident <= t:
                kind = self.kinds[cycle % len(self.kinds)]
                cycle += 1
                burst = rng.randint(*kind.burst)
                for _ in range(burst):
                    heapq.heappush(heap, (next_incident + rng.uniform(0, kind.spread_s), next(seq), kind))
                self.incidents.append(
                    {
                        "kind": kind.kind,
                        "service": kind.service,
                        "burst": burst,
                        "start_s": round(next_incident, 3),
                        "start": (self.start + timedelta(seconds=next_incident)).isoformat(
                            timespec="milliseconds"
                        ),
                    }
                )
                next_incident += self.incident_every_s
            end = t if seconds is None else min(t, seconds)
            while heap and heap[0][0] <= end:
                at, _, kind = heapq.heappop(heap)
                ev = Event(kind.service, stamp(kind.service, at), "ERROR", "", kind=kind.kind)
                kind.build(rng, ev)
                yield ev
            if seconds is not None and t >= seconds:
                self.incidents = [i for i in self.incidents if i["start_s"] < seconds]
                return
            spec = rng.choices(specs, cum_weights=cum)[0]
            yield background_event(spec, stamp(spec.name, t), rng, self.warn_share)

    def render(self, ev: Event, rng: random.Random) -> list[str]:
        return render(self.specs[ev.service], ev, rng)

    def lines(self, seconds: float) -> Iterator[tuple[str, str]]:
        """(service, physical line) in time order."""
        rng = random.Random(self.seed ^ 0x5EED)
        for ev in self.events(seconds):
            for line in self.render(ev, rng):
                yield ev.service, line
