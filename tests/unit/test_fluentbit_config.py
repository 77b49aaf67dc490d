"""The checked-in Fluent Bit config is what cali.fluentbit renders from cali.core.parsing."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from cali.core.parsing import DEFAULT_SOURCES, FORMATS
from cali.fluentbit import render_all, render_config, to_onigmo, to_python

FLUENT_BIT_DIR = Path(__file__).resolve().parents[2] / "fluent-bit"


def test_checked_in_config_equals_generator_output() -> None:
    for name, text in render_all().items():
        path = FLUENT_BIT_DIR / name
        assert path.exists(), f"missing {path}: run python -m cali.fluentbit --out fluent-bit/"
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run python -m cali.fluentbit"


def test_render_is_deterministic() -> None:
    assert render_config() == render_config()


def _regexes(doc: dict) -> list[str]:
    out = [p["regex"] for p in doc["parsers"] if "regex" in p]
    for ml in doc["multiline_parsers"]:
        for rule in ml["rules"]:
            assert rule["regex"].startswith("/") and rule["regex"].endswith("/")
            out.append(rule["regex"][1:-1])
    return out


def test_every_rendered_regex_is_onigmo_style_and_compiles_back_in_python() -> None:
    for text in render_all().values():
        doc = yaml.safe_load(text)
        regexes = _regexes(doc)
        assert regexes
        for rx in regexes:
            assert "(?P<" not in rx
            re.compile(to_python(rx))
    for fmt in FORMATS.values():
        for rx in filter(None, (fmt.header, fmt.start, fmt.cont, fmt.fallback_header)):
            assert to_python(to_onigmo(rx)) == rx
            assert "^" not in rx.replace("[^", "")  # Onigmo's ^ also matches after a newline


def test_config_shape() -> None:
    doc = yaml.safe_load(render_config()["fluent-bit.yaml"])
    assert set(doc) == {"service", "parsers", "multiline_parsers", "pipeline"}
    inputs = doc["pipeline"]["inputs"]
    assert [i["tag"] for i in inputs] == [f"cali.{s.format}.{s.service}" for s in DEFAULT_SOURCES]
    parser_names = {p["name"] for p in doc["parsers"]}
    ml_names = {m["name"] for m in doc["multiline_parsers"]}
    for i in inputs:
        assert i["name"] == "tail" and i["read_from_head"] is False and i["db"]
        assert i["multiline.parser"] in ml_names and i["multiline.parser"] != "java"
    filters = doc["pipeline"]["filters"]
    parser_filters = [f for f in filters if f["name"] == "parser"]
    assert {f["match"] for f in parser_filters} == {f"cali.{s.format}.*" for s in DEFAULT_SOURCES}
    for f in parser_filters:
        assert f["key_name"] == "log" and f["reserve_data"] is True
        assert set(f["parser"]) <= parser_names
    zap = next(f for f in parser_filters if f["match"] == "cali.zap.*")
    assert zap["parser"] == ["cali-zap-json", "cali-zap-fallback"]
    modifies = {f["match"]: f["add"] for f in filters if f["name"] == "modify"}
    assert modifies["cali.zap.api-gateway"] == ["service api-gateway", "host ${HOSTNAME}", "level FATAL"]
    kinesis, firehose = doc["pipeline"]["outputs"]
    assert kinesis["name"] == "kinesis_streams" and kinesis["stream"] == "${CALI_KINESIS_STREAM}"
    assert kinesis["time_key"] == "@ingested" and kinesis["time_key_format"] == "%Y-%m-%dT%H:%M:%S.%3NZ"
    assert kinesis["simple_aggregation"] is True and "partition_key" not in kinesis  # always random
    assert "endpoint" not in kinesis
    assert firehose["name"] == "kinesis_firehose" and firehose["delivery_stream"] == "${CALI_FIREHOSE_STREAM}"


def test_local_config_points_at_kinesalite_over_tls() -> None:
    doc = yaml.safe_load(render_all()["fluent-bit.local.yaml"])
    (kinesis,) = doc["pipeline"]["outputs"]
    assert (kinesis["endpoint"], kinesis["port"], kinesis["tls.ca_file"]) == (
        "127.0.0.1",
        4567,
        ".local/stack/tls/ca.pem",
    )
    assert kinesis["stream"] == "cali-logs"
