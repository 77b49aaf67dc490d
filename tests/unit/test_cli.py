import json
from pathlib import Path

from typer.testing import CliRunner

from cali.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_schema_matches_the_copy_in_docs():
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads((ROOT / "docs/log-record.schema.json").read_text())
    assert {"timestamp", "level", "service", "message"} <= set(json.loads(result.output)["required"])


def test_fingerprint_prints_one_group_and_template_per_line_and_keeps_state(tmp_path):
    state = tmp_path / "miner.json"
    first = runner.invoke(app, ["fingerprint", "--state", str(state)],
                          input="Took 35ms for user 42\nDisk full on /dev/sda1\nTook 9ms for user 7\n")
    assert first.exit_code == 0, first.output
    rows = [line.split("\t") for line in first.output.splitlines()]
    assert [r[0] for r in rows] == ["g1", "g2", "g1"]
    assert rows[0][1] == rows[2][1] and "<" in rows[0][1]
    again = runner.invoke(app, ["fingerprint", "--state", str(state)], input="Took 1ms for user 3\n")
    assert again.output.split("\t")[0] == "g1"


def test_fingerprint_reads_input_file(tmp_path):
    f = tmp_path / "msgs.txt"
    f.write_text("a 1\na 2\n")
    out = runner.invoke(app, ["fingerprint", "--input", str(f)])
    assert out.exit_code == 0 and len(out.output.splitlines()) == 2


def test_invalid_configuration_is_explained(monkeypatch):
    monkeypatch.setenv("CALI_KINESIS__START", "AT_TIMESTAMP")
    out = runner.invoke(app, ["health"])
    assert out.exit_code == 2
    assert "start_timestamp" in out.output
