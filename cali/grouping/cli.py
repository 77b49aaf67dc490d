"""`cali fingerprint`: one `<group_id>\\t<template>` line per input message, with persistent state."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from cali.grouping.miner import TemplateMiner


def fingerprint_lines(lines: Iterable[str], out: TextIO, miner: TemplateMiner) -> None:
    """Write the group id and the template known at that moment for each line, in input order."""
    for line in lines:
        match = miner.add(line.rstrip("\r\n"))
        out.write(f"{match.group_id}\t{match.template}\n")


def fingerprint_command(input: Path | None, state: Path | None) -> None:
    """Read messages (one per line) from `input` or stdin; load and save the miner at `state`."""
    miner = TemplateMiner.load(state) if state is not None and state.exists() else TemplateMiner()
    if input is None:
        fingerprint_lines(sys.stdin, sys.stdout, miner)
    else:
        with input.open(encoding="utf-8", errors="replace") as f:
            fingerprint_lines(f, sys.stdout, miner)
    sys.stdout.flush()
    if state is not None:
        miner.save(state)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("input", nargs="?", type=Path, help="messages, one per line (default: stdin)")
    ap.add_argument("--state", type=Path, help="JSON miner state, loaded if present and saved at the end")
    a = ap.parse_args(argv)
    fingerprint_command(a.input, a.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
