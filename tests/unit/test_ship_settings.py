"""Configured sources and formats: cali.toml / CALI_SOURCES, and the regex checks user formats go through."""

from __future__ import annotations

import json

import pytest

from cali.config import Settings
from cali.core.parsing import FORMATS, MultilineJoiner, parse_event
from cali.core.regex_compat import subset_problems
from cali.fluentbit.onigmo import onigmo_error
from cali.ship.settings import ShipConfigError, from_settings, load_ship_config, ship_config

MYAPP = {"name": "myapp", "header": r"\A(?P<time>\S+) (?P<level>[A-Z]+) (?P<message>[\s\S]*)",
         "start": r"\A\d{4}-", "defaults": {"env": "prod"}}

# (case, the regex, a fragment the one error line must contain; None: inside the subset)
REGEX_CASES = [
    ("builtin style", r"\A(?P<a>\d+) (?P<message>[\s\S]*)", None),
    ("caret in a class is fine", r"\A[^\]]+ (?P<message>.*)", None),
    ("escaped caret and dollar", r"\A\^\$ (?P<message>.*)", None),
    ("caret anchor", r"^(?P<message>.*)", "uses ^"),
    ("dollar anchor", r"\A(?P<message>.*)$", "uses $"),
    ("python end of text", r"\A(?P<message>.*)\Z", "uses \\Z"),
    ("python named backref", r"\A(?P<q>['\"])(?P<message>.*)(?P=q)", "(?P=name)"),
    ("dotall flag", r"(?s)\A(?P<message>.*)", "inline flags"),
    ("ascii flag", r"(?a)\A(?P<message>\w+)", "Onigmo"),
    ("onigmo only: hex escape", r"\A\h+ (?P<message>.*)", "Python re"),
    ("onigmo only: named group", r"\A(?<message>.*)", "Python re"),
    ("onigmo only: variable look-behind", r"\A(?<=ab|c)(?P<message>.*)", "Python re"),
    ("neither", r"\A(?P<message>[a-", "Python re"),
]


@pytest.mark.parametrize(("case", "regex", "fragment"), REGEX_CASES, ids=[c[0] for c in REGEX_CASES])
def test_subset_check_table(case: str, regex: str, fragment: str | None) -> None:
    problems = subset_problems(regex, onigmo_error)
    if fragment is None:
        assert problems == []
    else:
        assert any(fragment in p for p in problems), problems


@pytest.mark.parametrize(("case", "regex", "fragment"), [c for c in REGEX_CASES if c[2]],
                         ids=[c[0] for c in REGEX_CASES if c[2]])
def test_a_user_format_with_a_bad_header_is_refused_in_one_line_naming_it(case, regex, fragment) -> None:
    with pytest.raises(ShipConfigError) as err:
        ship_config(formats=[{**MYAPP, "header": regex}])
    msg = str(err.value)
    assert "format 'myapp' header:" in msg and fragment in msg and "\n" not in msg


@pytest.mark.parametrize(("fmt", "error"), [
    ({**MYAPP, "start": r"\d{4}-"}, "start: must begin with \\A"),
    ({**MYAPP, "start": r"^\d{4}-"}, "format 'myapp' start: uses ^"),
    ({**MYAPP, "header": r"\A(?P<msg>.*)"}, "needs a named group (?P<message>"),
    ({**MYAPP, "name": "logback"}, "is built in"),
    ({**MYAPP, "name": "my.app"}, "name"),
    ({"name": "t", "header": r"\A(?P<message>.*)"}, "needs both `header` and `start`"),
    ({**MYAPP, "defaults": {"env": "two words"}}, "single words"),
    ({**MYAPP, "colour": "red"}, "Extra inputs are not permitted"),
])
def test_format_errors(fmt: dict, error: str) -> None:
    with pytest.raises(ShipConfigError, match=None) as err:
        ship_config(formats=[fmt])
    assert error in str(err.value)


@pytest.mark.parametrize(("sources", "formats", "error"), [
    ([{"service": "a", "path": "a.log", "format": "nope"}], [], "unknown format 'nope'"),
    ([{"service": "a b", "path": "a.log", "format": "python"}], [], "service"),
    ([{"service": "a", "path": "a.log", "format": "python"}, {"service": "b", "path": "a.log", "format": "pino"}],
     [], "configured twice"),
    ([], [MYAPP, MYAPP], "defined twice"),
])
def test_source_errors(sources, formats, error) -> None:
    with pytest.raises(ShipConfigError) as err:
        ship_config(sources, formats)
    assert error in str(err.value)


def test_a_user_format_joins_and_parses_like_a_builtin_one() -> None:
    cfg = ship_config([{"service": "myapp", "path": "/var/log/myapp/*.log", "format": "myapp"}], [MYAPP])
    fmt = cfg.catalog()["myapp"]
    assert cfg.catalog().keys() == FORMATS.keys() | {"myapp"}
    j = MultilineJoiner(fmt)
    lines = ["2026-11-26T12:00:00Z ERROR boom", "  at frame", "2026-11-26T12:00:01Z INFO ok"]
    events = [e for line in lines for e in j.feed(line, 0.0)] + j.flush(0.0, force=True)
    assert events == ["2026-11-26T12:00:00Z ERROR boom\n  at frame", "2026-11-26T12:00:01Z INFO ok"]
    rec = parse_event(fmt, events[0], service="myapp", host="h", ingested="x")
    assert (rec["level"], rec["message"], rec["env"], rec["service"]) == ("ERROR", "boom\n  at frame", "prod", "myapp")
    assert cfg.sources[0].is_glob


def test_json_user_format_with_a_fallback_header() -> None:
    fmt = ship_config(formats=[{"name": "nodeish", "kind": "json", "header": r"\A(?P<message>Error: [\s\S]*)",
                                "start": r"\A(?:\{|Error: )", "defaults": {"level": "FATAL"}}]).catalog()["nodeish"]
    assert parse_event(fmt, '{"level":"info","msg":"m"}', service="s", host=None, ingested="x")["level"] == "info"
    crash = parse_event(fmt, "Error: boom\n    at x (a.js:1:1)", service="s", host=None, ingested="x")
    assert crash["message"].startswith("Error: boom") and crash["level"] == "FATAL"


def test_sources_from_a_toml_file(tmp_path) -> None:
    path = tmp_path / "cali.toml"
    path.write_text('[kinesis]\nstream = "x"\n\n[[sources]]\nservice = "a"\npath = "logs/*.log"\nformat = "myapp"\n\n'
                    '[[formats]]\nname = "myapp"\nheader = \'\\A(?P<message>[\\s\\S]*)\'\nstart = \'\\A\\S\'\n')
    cfg = load_ship_config(path)
    assert [(s.service, s.path, s.format) for s in cfg.sources] == [("a", "logs/*.log", "myapp")]
    path.write_text('[[sources]]\nservice = "a"\npath = "a.log"\nformat = "nope"\n')
    with pytest.raises(ShipConfigError, match=rf"{path}: source 'a' \(a.log\): unknown format 'nope'"):
        load_ship_config(path)
    with pytest.raises(ShipConfigError, match="no such file"):
        load_ship_config(tmp_path / "missing.toml")


def test_sources_and_formats_from_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no cali.toml here
    monkeypatch.setenv("CALI_SOURCES", json.dumps([{"service": "a", "path": "/l/a.log", "format": "myapp"}]))
    monkeypatch.setenv("CALI_FORMATS", json.dumps([MYAPP]))
    cfg = from_settings(Settings())
    assert cfg.to_sources()[0].format == "myapp" and "myapp" in cfg.catalog()
    monkeypatch.setenv("CALI_FORMATS", json.dumps([{**MYAPP, "header": r"^(?P<message>.*)"}]))
    with pytest.raises(ValueError, match="format 'myapp' header: uses \\^"):
        Settings()


def test_the_example_config_validates() -> None:
    from cali.fluentbit.command import EXAMPLE

    cfg = load_ship_config(EXAMPLE)
    assert len(cfg.sources) == 8 and not cfg.formats
