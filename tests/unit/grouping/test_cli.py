"""`fingerprint_command`: one `<group_id>\\t<template>` line per input line, state kept across runs."""

import subprocess
import sys
from pathlib import Path

from cali.grouping.cli import fingerprint_command

REPO = Path(__file__).resolve().parents[3]


def test_output_format_and_state(tmp_path, capsys) -> None:
    messages = tmp_path / "in.log"
    messages.write_text("disk 1 full\r\nuser bob logged in\ndisk 2 full\n", encoding="utf-8")
    state = tmp_path / "state.json"

    fingerprint_command(messages, state)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    rows = [line.split("\t") for line in lines]
    assert all(len(r) == 2 for r in rows)
    assert rows[0] == [rows[2][0], "disk <num> full"]
    assert rows[1][0] != rows[0][0]
    assert state.exists()

    again = tmp_path / "again.log"
    again.write_text("disk 7 full\n", encoding="utf-8")
    fingerprint_command(again, state)
    assert capsys.readouterr().out == f"{rows[0][0]}\tdisk <num> full\n"


def test_module_reads_stdin() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cali.grouping.cli"], input="a 1\na 2\n", capture_output=True,
        text=True, cwd=REPO, check=True, timeout=60,
    ).stdout
    assert out == "g1\ta <num>\ng1\ta <num>\n"
