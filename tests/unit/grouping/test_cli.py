"""`cali fingerprint`: one `<group_id>\\t<template>` line per input line, state kept across runs."""

import io
import subprocess
import sys
from pathlib import Path

from cali.grouping.cli import fingerprint_command, fingerprint_lines
from cali.grouping.miner import TemplateMiner

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


def test_lines_of_one_event_print_its_canonical_id() -> None:
    # Online, "bob" got an id of its own before the third name showed the position is a value;
    # the printed id is the one every line of the event resolves to.
    out = io.StringIO()
    users = ["alice", "bob", "carol", "dave"]
    fingerprint_lines([f"Invalid user {u} from 10.0.0.1\n" for u in users], out, TemplateMiner())
    assert out.getvalue() == "g1\tInvalid user <*> from <ip>\n" * 4


def test_ids_resolve_per_chunk() -> None:
    out = io.StringIO()
    miner = TemplateMiner()
    fingerprint_lines([f"Invalid user {u} from 10.0.0.1" for u in ["alice", "bob", "carol"]], out, miner, chunk=2)
    # The first chunk was printed before the third name merged "bob" into "alice"'s group.
    assert [line.split("\t")[0] for line in out.getvalue().splitlines()] == ["g1", "g2", "g1"]
    assert miner.resolve("g2") == "g1"


def test_module_reads_stdin() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cali.grouping.cli"], input="a 1\na 2\n", capture_output=True,
        text=True, cwd=REPO, check=True, timeout=60,
    ).stdout
    assert out == "g1\ta <num>\ng1\ta <num>\n"


def test_cali_fingerprint_starts_without_the_other_commands(tmp_path) -> None:
    # `python -m cali fingerprint` takes the short way; it must print what the typer command does.
    messages = tmp_path / "in.log"
    messages.write_text("disk 1 full\nuser bob logged in\n", encoding="utf-8")
    code = ("import sys, runpy\nsys.argv = ['cali', 'fingerprint', '--input', sys.argv[1]]\n"
            "try:\n    runpy.run_module('cali', run_name='__main__')\nexcept SystemExit as e:\n"
            "    assert not e.code, e.code\n"
            "print(sorted(m for m in sys.modules if m in ('typer', 'boto3', 'pydantic')), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code, str(messages)], capture_output=True, text=True,
                         cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "g1\tdisk <num> full\ng2\tuser bob logged in\n"
    assert out.stderr.strip() == "[]"
