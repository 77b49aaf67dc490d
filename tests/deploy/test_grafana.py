"""Grafana as code: the files are what the generator writes, every query names real fields and metrics,
and every data source a panel or rule uses is provisioned with that uid and type."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.support import needs

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"


@pytest.fixture(scope="module")
def generated():
    needs.module("grafana_foundation_sdk", "grafana-foundation-sdk is not installed (make install)")
    from cali.deploy.grafana import files

    return files()


def dashboards() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((GRAFANA / "dashboards").glob("*.json"))]


def rules() -> list[dict]:
    doc = yaml.safe_load((GRAFANA / "provisioning" / "alerting" / "cali-rules.yaml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def queries() -> list[tuple[str, dict, str]]:
    """(where, query model, datasource uid) of every panel target and every rule query."""
    out = []
    for d in dashboards():
        for p in d["panels"]:
            for t in p.get("targets") or []:
                out.append((f"{d['uid']}/{p['title']}", t, (t.get("datasource") or p.get("datasource") or {})["uid"]))
    for r in rules():
        for q in r["data"]:
            if q["datasourceUid"] != "__expr__":
                out.append((f"rule {r['uid']}", q["model"], q["datasourceUid"]))
    return out


def test_files_are_what_the_generator_writes(generated):
    stale = [rel for rel, text in generated.items() if not (GRAFANA / rel).is_file() or
             (GRAFANA / rel).read_text() != text]
    assert not stale, f"run python -m cali.deploy.grafana generate: {stale}"
    on_disk = {str(p.relative_to(GRAFANA)) for p in GRAFANA.rglob("*") if p.is_file()}
    assert on_disk == set(generated), on_disk ^ set(generated)


def test_dashboards_cover_what_the_issue_asks():
    titles = {p["title"] for d in dashboards() for p in d["panels"]}
    for want in ("Error trend by level", "Errors by service", "Level distribution per service", "Recent errors",
                 "Incidents (last seen first)", "Lag per shard (MillisBehindLatest)", "DLQ rate",
                 "Slack delivery latency", "LLM cost (USD per hour, at the price variable)"):
        assert want in titles
    assert {r["uid"] for r in rules()} == {"cali-error-rate", "cali-shard-lag", "cali-dlq-growth",
                                           "cali-slack-failures"}


def _mapped_fields(template: dict) -> set[str]:
    out: set[str] = set()

    def walk(props: dict, prefix: str) -> None:
        for name, spec in props.items():
            out.add(prefix + name)
            walk(spec.get("properties") or {}, f"{prefix}{name}.")
            for sub in spec.get("fields") or {}:
                out.add(f"{prefix}{name}.{sub}")

    walk(template["template"]["mappings"]["properties"], "")
    return out


def test_every_opensearch_query_names_mapped_fields():
    from cali.index import opensearch_mapping as m

    fields = {"cali-opensearch-logs": _mapped_fields(m.logs_template()),
              "cali-opensearch-incidents": _mapped_fields(m.incidents_template())}
    checked = 0
    for where, q, uid in queries():
        if uid not in fields:
            continue
        named = set(re.findall(r"([@A-Za-z_][\w.@]*):", q.get("query", "")))
        named |= {a["field"] for a in q.get("bucketAggs", []) if "field" in a} | {q["timeField"]}
        unknown = named - fields[uid]
        assert not unknown, f"{where}: fields {unknown} are not in the {uid} mapping"
        checked += 1
    assert checked >= 8


def test_every_prometheus_query_names_exported_metrics_and_their_tags():
    from cali.metrics import CATALOG

    suffix = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    checked = 0
    for where, q, uid in queries():
        if uid != "cali-prometheus":
            continue
        expr = q["expr"]
        series = re.findall(r"\bray_(cali_\w+)", expr)
        assert series, f"{where}: no CALI metric in {expr!r}"
        for s in series:
            metric = next((m for m in CATALOG.values() for sx in suffix[m.kind] if s == m.name + sx), None)
            assert metric is not None, f"{where}: ray_{s} is not exported (cali/metrics.py CATALOG)"
            for labels in re.findall(r"by \(([^)]*)\)", expr):
                for label in (x.strip() for x in labels.split(",")):
                    assert label in metric.tags or (label == "le" and metric.kind == "histogram"), \
                        f"{where}: {metric.name} has no tag {label!r}"
            for label in re.findall(r"\{(\w+)[!=]", expr):
                assert label in metric.tags, f"{where}: {metric.name} has no tag {label!r}"
        checked += 1
    assert checked >= 12


def test_datasource_uids_are_consistent():
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "cali.yaml").read_text())["datasources"]
    by_uid = {d["uid"]: d["type"] for d in ds}
    assert len(by_uid) == len(ds)
    for d in dashboards():
        for p in d["panels"]:
            refs = [p.get("datasource")] + [t.get("datasource") for t in p.get("targets") or []]
            for ref in filter(None, refs):
                assert by_uid.get(ref["uid"]) == ref["type"], f"{d['uid']}/{p['title']}: {ref} is not provisioned"
    for r in rules():
        for q in r["data"]:
            assert q["datasourceUid"] == "__expr__" or q["datasourceUid"] in by_uid, r["uid"]
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "cali.yaml").read_text())
    assert provider["providers"][0]["options"]["path"].endswith("/cali")
