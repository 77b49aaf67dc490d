"""`cali fingerprint`: one `<group_id>\\t<template>` line per input message, with persistent state."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from cali.grouping.miner import Match, TemplateMiner

CHUNK = 100_000  # lines held before their groups are printed, to bound memory


def fingerprint_lines(lines: Iterable[str], out: TextIO, miner: TemplateMiner, chunk: int = CHUNK) -> None:
    """Write the group id and template of each line, in input order, as known once the lines of
    its chunk are mined: the lines of one event print one id, the canonical one (an id printed
    for an earlier chunk may become an alias of it later; the state resolves it)."""
    pending: list[Match] = []
    for line in lines:
        pending.append(miner.add(line.rstrip("\r\n")))
        if len(pending) >= chunk:
            _flush(pending, out, miner)
    _flush(pending, out, miner)


def _flush(pending: list[Match], out: TextIO, miner: TemplateMiner) -> None:
    for match in pending:
        gid = miner.resolve(match.group_id)
        out.write(f"{gid}\t{miner.template(gid) or match.template}\n")
    pending.clear()


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
    ap.add_argument("--input", dest="input_option", type=Path, help="the same, as `cali fingerprint` spells it")
    ap.add_argument("--state", type=Path, help="JSON miner state, loaded if present and saved at the end")
    a = ap.parse_args(argv)
    fingerprint_command(a.input_option or a.input, a.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
