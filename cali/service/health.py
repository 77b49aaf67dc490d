"""Health checks run side by side under one deadline, so start-up waits seconds, not the sum of timeouts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cali.core.ports import Health


@dataclass(frozen=True)
class Check:
    name: str
    build: Callable[[], Any]  # builds the adapter; its .healthcheck() is the check
    where: str  # the endpoint or place it talks to, for "did not answer"
    setting: str  # the variable that changes `where`


def run_checks(checks: list[Check], deadline_s: float) -> list[Health]:
    """Every check's Health, in the order given; a check still running at the deadline fails as silent.

    Each runs in a daemon thread: one stuck past its own timeouts (a server that accepts and never
    answers, a DNS lookup) is left behind rather than holding the command or its exit.
    """
    results: dict[int, Health] = {}

    def run(i: int, check: Check) -> None:
        try:
            results[i] = check.build().healthcheck()
        except Exception as exc:  # a check reports; it never raises
            results[i] = Health(check.name, False, f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(i, c), name=f"health:{c.name}", daemon=True)
               for i, c in enumerate(checks)]
    for t in threads:
        t.start()
    end = time.monotonic() + deadline_s
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    return [_named(results.get(i), c, deadline_s) for i, c in enumerate(checks)]


def _named(h: Health | None, c: Check, deadline_s: float) -> Health:
    """A failure names the setting to fix, unless the adapter's message already does."""
    if h is None:
        return Health(c.name, False, f"{c.where} did not answer within {deadline_s:g} s; is it up? "
                                     f"(set by {c.setting})")
    if h.ok or "CALI_" in h.detail:
        return h
    return Health(h.name, h.ok, f"{h.detail} (set by {c.setting})")
