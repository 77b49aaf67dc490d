"""The rendered Fluent Bit config: checked-in files current, regexes valid in both engines, keys as relied on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cali.core.parsing import FORMATS, LOG_FILE_KEY, LOG_OFFSET_KEY, RAW_KEY, Source
from cali.core.regex_compat import subset_problems
from cali.fluentbit import AWS, LOCAL, render_config, to_onigmo, to_python
from cali.fluentbit.command import render_examples
from cali.fluentbit.onigmo import onigmo_error
from cali.gen.sources import DEMO_SOURCES
from cali.ship.settings import ship_config

FLUENT_BIT_DIR = Path(__file__).resolve().parents[2] / "fluent-bit"
EXAMPLE = [Source(s.service, s.format, f".local/logs/apps/{s.path}") for s in DEMO_SOURCES]
USER_FORMATS = ship_config(formats=[
    {"name": "myapp", "header": r"\A(?P<time>\S+) (?P<level>[A-Z]+) (?P<message>[\s\S]*)",
     "start": r"\A\d{4}-", "defaults": {"env": "prod", "level": "INFO"}},
    {"name": "jsonish", "kind": "json", "header": r"\A(?P<message>Exception in [\s\S]*)",
     "start": r"\A(?:\{|Exception in )"},
])
USER_SOURCES = [Source("svc-a", "myapp", "/var/log/a/*.log"), Source("svc-b", "jsonish", "/var/log/b.log"),
                Source("svc-a", "myapp", "/var/log/a2.log")]


def _doc(text: str) -> dict:
    return yaml.safe_load(text)


def _regexes(doc: dict) -> list[str]:
    out = [p["regex"] for p in doc["parsers"] if "regex" in p]
    for ml in doc["multiline_parsers"]:
        for rule in ml["rules"]:
            assert rule["regex"].startswith("/") and rule["regex"].endswith("/")
            out.append(rule["regex"][1:-1])
    return out


def _eks_config(text: str) -> dict:
    return _doc(_doc(text)["config"]["extraFiles"]["cali.yaml"])


def test_checked_in_files_equal_the_render_of_examples_cali_toml() -> None:
    files = render_examples()
    assert set(files) == {"fluent-bit.yaml", "fluent-bit.local.yaml", "eks-values.yaml"}
    for name, text in files.items():
        path = FLUENT_BIT_DIR / name
        assert path.exists(), f"missing {path}: run python -m cali.fluentbit"
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run python -m cali.fluentbit"


def test_examples_cali_toml_is_the_demo_services() -> None:
    docs = _doc(render_examples()["fluent-bit.local.yaml"])
    assert [(i["tag"], i["path"]) for i in docs["pipeline"]["inputs"]] == [
        (f"cali.{s.format}.{s.service}", s.path) for s in EXAMPLE]


def test_render_is_deterministic() -> None:
    assert render_config(EXAMPLE) == render_config(EXAMPLE)


@pytest.mark.parametrize("text", [
    render_config(EXAMPLE, profile=AWS), render_config(EXAMPLE, profile=LOCAL),
    render_config(USER_SOURCES, USER_FORMATS.catalog()),
])
def test_every_rendered_regex_compiles_in_onigmo_and_back_in_python(text: str) -> None:
    regexes = _regexes(_doc(text))
    assert regexes
    for rx in regexes:
        assert "(?P<" not in rx
        assert onigmo_error(rx) is None, rx
        re.compile(to_python(rx))


def test_every_eks_regex_compiles_in_onigmo_and_back_in_python() -> None:
    for rx in _regexes(_eks_config(render_examples()["eks-values.yaml"])):
        assert onigmo_error(rx) is None, rx
        re.compile(to_python(rx))


def test_builtin_formats_are_inside_the_common_subset() -> None:
    for fmt in FORMATS.values():
        for rx in filter(None, (fmt.header, fmt.start, fmt.cont, fmt.fallback_header)):
            assert to_python(to_onigmo(rx)) == rx
            assert subset_problems(rx, onigmo_error) == [], (fmt.name, rx)


@pytest.mark.parametrize("profile", [AWS, LOCAL])
def test_tail_inputs_carry_origin_buffer_on_disk_and_read_from_head(profile) -> None:
    doc = _doc(render_config(EXAMPLE, profile=profile))
    service = doc["service"]
    assert service["storage.path"] == f"{profile.state_dir}/storage"
    assert service["storage.sync"] == "normal" and service["health_check"] is True
    ml_names = {m["name"] for m in doc["multiline_parsers"]}
    for i in doc["pipeline"]["inputs"]:
        assert i["name"] == "tail"
        assert (i["path_key"], i["offset_key"], i["key"]) == (LOG_FILE_KEY, LOG_OFFSET_KEY, RAW_KEY)
        assert i["storage.type"] == "filesystem" and i["read_from_head"] is True
        assert i["db"].startswith(profile.state_dir + "/") and i["skip_empty_lines"] is False
        assert i["multiline.parser"] in ml_names
    for out in doc["pipeline"]["outputs"]:
        assert out["retry_limit"] == "no_limits" and out["storage.total_limit_size"] == profile.total_limit_size
        assert out["time_key"] == "@ingested" and out["time_key_format"] == "%Y-%m-%dT%H:%M:%S.%3NZ"


def test_multiline_parsers_keep_the_raw_key_and_regex_parsers_keep_empty_groups() -> None:
    doc = _doc(render_config(EXAMPLE))
    for ml in doc["multiline_parsers"]:
        assert ml["key_content"] == RAW_KEY and ml["flush_timeout"] == 500
    regex_parsers = [p for p in doc["parsers"] if p["format"] == "regex"]
    assert regex_parsers and all(p["skip_empty_values"] is False for p in regex_parsers)
    for f in (f for f in doc["pipeline"]["filters"] if f["name"] == "parser"):
        assert f["key_name"] == RAW_KEY and f["reserve_data"] is True


def test_filters_parse_then_clear_empty_pipeline_keys_then_add_them() -> None:
    doc = _doc(render_config(EXAMPLE))
    filters = doc["pipeline"]["filters"]
    kinds = ["parser" if f["name"] == "parser" else "empty" if "condition" in f else "add" for f in filters]
    assert kinds == sorted(kinds, key=["parser", "empty", "add"].index)
    empties = {(f["match"], f["remove"]): f["condition"] for f in filters if "condition" in f}
    assert empties[("cali.*", "service")] == [r"key_value_matches service \A\z"]
    assert ("cali.*", "host") in empties and ("cali.zap.*", "level") in empties
    assert ("cali.logback.*", "level") not in empties  # only a format's own defaults
    adds = {f["match"]: f["add"] for f in filters if f["name"] == "modify" and "add" in f}
    assert adds["cali.zap.api-gateway"] == ["service api-gateway", "host ${HOSTNAME}", "level FATAL"]
    zap = next(f for f in filters if f["name"] == "parser" and f["match"] == "cali.zap.*")
    assert zap["parser"] == ["cali-zap-json", "cali-zap-fallback"]


def test_aws_profile_ships_to_stream_and_firehose_by_environment() -> None:
    kinesis, firehose = _doc(render_config(EXAMPLE, profile=AWS))["pipeline"]["outputs"]
    assert kinesis["name"] == "kinesis_streams" and kinesis["stream"] == "${CALI_KINESIS_STREAM}"
    assert kinesis["simple_aggregation"] is True and "partition_key" not in kinesis  # always random
    assert "endpoint" not in kinesis
    assert firehose["name"] == "kinesis_firehose" and firehose["delivery_stream"] == "${CALI_FIREHOSE_STREAM}"


def test_local_profile_points_at_kinesalite_over_tls() -> None:
    (kinesis,) = _doc(render_config(EXAMPLE, profile=LOCAL))["pipeline"]["outputs"]
    assert (kinesis["endpoint"], kinesis["port"], kinesis["tls.ca_file"]) == (
        "127.0.0.1", 4567, ".local/stack/tls/ca.pem")
    assert kinesis["stream"] == "cali-logs"


def test_user_formats_and_globs_render_like_the_builtin_ones() -> None:
    doc = _doc(render_config(USER_SOURCES, USER_FORMATS.catalog()))
    inputs = doc["pipeline"]["inputs"]
    assert [i["path"] for i in inputs] == ["/var/log/a/*.log", "/var/log/b.log", "/var/log/a2.log"]
    assert [i["db"].rsplit("/", 1)[1] for i in inputs] == ["cali-svc-a.db", "cali-svc-b.db", "cali-svc-a-2.db"]
    parsers = {p["name"]: p for p in doc["parsers"]}
    assert parsers["cali-myapp"]["regex"].startswith(r"\A(?<time>")
    assert parsers["cali-jsonish-json"]["format"] == "json"
    assert parsers["cali-jsonish-fallback"]["regex"] == r"\A(?<message>Exception in [\s\S]*)"
    filters = doc["pipeline"]["filters"]
    adds = [f for f in filters if f["name"] == "modify" and "add" in f]
    assert [f["match"] for f in adds] == ["cali.myapp.svc-a", "cali.jsonish.svc-b"]  # one per tag
    assert adds[0]["add"] == ["service svc-a", "host ${HOSTNAME}", "env prod", "level INFO"]
    empties = {(f["match"], f["remove"]) for f in filters if "condition" in f}
    assert {("cali.myapp.*", "env"), ("cali.myapp.*", "level")} <= empties


@pytest.mark.parametrize(("sources", "error"), [
    ([], "no sources"),
    ([Source("s", "nope", "a.log")], "unknown log format"),
])
def test_render_refuses_what_it_cannot_ship(sources, error) -> None:
    with pytest.raises(ValueError, match=error):
        render_config(sources)


def test_eks_values_tail_containers_and_route_by_annotation() -> None:
    text = render_examples()["eks-values.yaml"]
    assert "chart 0.58.1" in text.splitlines()[1]
    values = _doc(text)
    assert values["kind"] == "DaemonSet"
    assert values["args"][-1] == "--config=/fluent-bit/etc/conf/cali.yaml"
    mounts = {m["name"]: m["mountPath"] for m in values["daemonSetVolumeMounts"]}
    vols = {v["name"]: v for v in values["daemonSetVolumes"]}
    assert mounts["cali-state"] == vols["cali-state"]["hostPath"]["path"] == "/var/fluent-bit/state"
    assert {e["name"] for e in values["env"]} == {"AWS_REGION", "CALI_KINESIS_STREAM", "CALI_FIREHOSE_STREAM"}
    cfg = _eks_config(text)
    assert cfg["service"]["storage.path"].startswith("/var/fluent-bit/state")
    assert cfg["service"]["http_listen"] == "0.0.0.0"  # the chart's probes reach the pod IP
    (tail,) = cfg["pipeline"]["inputs"]
    assert tail["multiline.parser"] == "cri" and tail["path"] == "/var/log/containers/*.log"
    assert (tail["path_key"], tail["offset_key"]) == (LOG_FILE_KEY, LOG_OFFSET_KEY)
    assert tail["storage.type"] == "filesystem" and tail["read_from_head"] is True
    filters = cfg["pipeline"]["filters"]
    assert filters[0]["rename"] == ["log message", "time k8s.cri_time", "stream k8s.stream"]
    names = [f["name"] for f in filters]
    assert names.index("modify") < names.index("kubernetes") < names.index("rewrite_tag") < names.index("multiline")
    rules = next(f for f in filters if f["name"] == "rewrite_tag")["rule"]
    assert rules[0] == "$kubernetes['annotations']['cali.dev/format'] ^logback$ cali.logback.$TAG false"
    assert len(rules) == len(FORMATS) + 1 and all(len(r.split()) == 4 for r in rules)
    ml = {f["match"]: f for f in filters if f["name"] == "multiline"}
    parser = {f["match"]: f for f in filters if f["name"] == "parser"}
    for fmt in FORMATS:
        assert ml[f"cali.{fmt}.*"]["multiline.parser"] == f"cali-ml-{fmt}"
        assert ml[f"cali.{fmt}.*"]["multiline.key_content"] == RAW_KEY
        assert ml[f"cali.{fmt}.*"]["emitter_storage.type"] == "filesystem"
        assert parser[f"cali.{fmt}.*"]["key_name"] == RAW_KEY
    copies = next(f for f in filters if "copy" in f)["copy"]
    assert copies[0] == "k8s.label.app.kubernetes.io/name service" and "k8s.host host" in copies
    assert {o["name"] for o in cfg["pipeline"]["outputs"]} == {"kinesis_streams", "kinesis_firehose"}
