"""Processes a command started and left behind, found by a tag in their environment: every child
(kinesalite, moto, the Ray processes and workers) inherits the command's environment."""

from __future__ import annotations

import time

import psutil

TAG_VAR = "CALI_TEST_TAG"


def tagged_processes(tag: str, grace_s: float = 15.0) -> list[str]:
    """The live processes carrying TAG_VAR=tag, after giving them grace_s to finish exiting."""
    deadline = time.monotonic() + grace_s
    while True:
        found = []
        for proc in psutil.process_iter():
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                if proc.environ().get(TAG_VAR) == tag:
                    found.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
            except psutil.Error:
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)
