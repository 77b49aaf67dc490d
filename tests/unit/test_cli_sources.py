"""`cali fluentbit render`, `cali generate --config` and `cali ship` read the configured sources and formats."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cali.cli import app
from cali.fluentbit.command import EXAMPLE, render_files
from cali.ship.settings import load_ship_config

runner = CliRunner()
TOML = """
[[sources]]
service = "checkout"
path = "logs/checkout.log"
format = "myapp"

[[formats]]
name = "myapp"
header = '\\A(?P<time>\\S+) (?P<level>[A-Z]+) (?P<message>[\\s\\S]*)'
start = '\\A\\d{4}-'
"""


def test_render_writes_the_configs_of_a_config_file(tmp_path: Path) -> None:
    (tmp_path / "cali.toml").write_text(TOML)
    out = runner.invoke(app, ["fluentbit", "render", "--config", str(tmp_path / "cali.toml"), "--out",
                              str(tmp_path / "fb")])
    assert out.exit_code == 0, out.output
    want = render_files(load_ship_config(tmp_path / "cali.toml"), str(tmp_path / "cali.toml"))
    assert {p.name: p.read_text() for p in (tmp_path / "fb").iterdir()} == want
    assert "path: logs/checkout.log" in want["fluent-bit.local.yaml"]


def test_render_reads_cali_toml_in_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cali.toml").write_text(TOML)
    out = runner.invoke(app, ["fluentbit", "render", "--out", "fb", "--profile", "local", "--no-eks"])
    assert out.exit_code == 0, out.output
    assert [p.name for p in (tmp_path / "fb").iterdir()] == ["fluent-bit.local.yaml"]


def test_a_bad_format_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "cali.toml").write_text(TOML.replace("'\\A(?P<time>", "'^(?P<time>"))
    out = runner.invoke(app, ["fluentbit", "render", "--config", str(tmp_path / "cali.toml"), "--out", str(tmp_path)])
    assert out.exit_code == 2
    assert "format 'myapp' header: uses ^" in out.output


def test_generate_writes_where_the_config_tails(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = runner.invoke(app, ["generate", "--config", str(EXAMPLE), "--duration", "5", "--rate", "50"])
    assert out.exit_code == 0, out.output
    for src in load_ship_config(EXAMPLE).sources:
        assert (tmp_path / src.path).stat().st_size > 0, src.path


def test_generate_refuses_a_glob(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('[[sources]]\nservice = "a"\npath = "x/*.log"\nformat = "python"\n')
    out = runner.invoke(app, ["generate", "--config", str(tmp_path / "c.toml"), "--duration", "1"])
    assert out.exit_code != 0 and "cannot write to a glob" in out.output


def test_ship_without_sources_says_how_to_configure_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CALI_SOURCES", raising=False)
    out = runner.invoke(app, ["ship", "--once"])
    assert out.exit_code == 2 and "no sources configured" in out.output
