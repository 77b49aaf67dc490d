"""Grafana as code: dashboards, data sources and alert rules generated with grafana-foundation-sdk.

    python -m cali.deploy.grafana generate [--check]

writes deploy/grafana/ (provisioning/ for Grafana's file provisioning, dashboards/*.json). Panel queries
name only fields of the OpenSearch mappings (cali/index/opensearch_mapping.py) and metrics of the
catalog (cali/metrics.py); tests/deploy/test_grafana.py checks both, and that the files are current.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import (
    alerting,
    barchart,
    dashboard,
    elasticsearch,
    expr,
    prometheus,
    stat,
    table,
    timeseries,
)
from grafana_foundation_sdk.builders import logs as logs_panel
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.alerting import RelativeTimeRange
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from cali.index import opensearch_mapping as m

OUT = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
OPENSEARCH_TYPE = "grafana-opensearch-datasource"
LOGS_DS = DataSourceRef(type_val=OPENSEARCH_TYPE, uid="cali-opensearch-logs")
INCIDENTS_DS = DataSourceRef(type_val=OPENSEARCH_TYPE, uid="cali-opensearch-incidents")
PROM_DS = DataSourceRef(type_val="prometheus", uid="cali-prometheus")
CALI = "origin:cali"  # CALI's validated copies; Firehose's raw copies of the same lines are not counted twice


# -- queries ---------------------------------------------------------------------------------------------
def os_count(query: str, *, split: str | None = None, ref: str = "A", interval: str = "auto") -> Any:
    """Count over time (date_histogram on @timestamp), split by a keyword field's terms when given."""
    aggs: list[Any] = []
    if split:
        aggs.append(elasticsearch.Terms().id("2").field(split).settings(
            elasticsearch.ElasticsearchTermsSettings().size("20").order("desc").order_by("_count")))
    aggs.append(elasticsearch.DateHistogram().id("3").field("@timestamp").settings(
        elasticsearch.ElasticsearchDateHistogramSettings().interval(interval).min_doc_count("0")))
    return (elasticsearch.Dataquery().ref_id(ref).datasource(LOGS_DS).query(query).time_field("@timestamp")
            .query_type("lucene").metrics([elasticsearch.Count().id("1")]).bucket_aggs(aggs))


def os_terms(query: str, fields: list[str], ds: DataSourceRef = LOGS_DS, time_field: str = "@timestamp") -> Any:
    aggs = [elasticsearch.Terms().id(str(i + 2)).field(f).settings(
        elasticsearch.ElasticsearchTermsSettings().size("20").order("desc").order_by("_count"))
        for i, f in enumerate(fields)]
    return (elasticsearch.Dataquery().ref_id("A").datasource(ds).query(query).time_field(time_field)
            .query_type("lucene").metrics([elasticsearch.Count().id("1")]).bucket_aggs(aggs))


def os_raw(query: str, ds: DataSourceRef, time_field: str, size: int = 100) -> Any:
    return (elasticsearch.Dataquery().ref_id("A").datasource(ds).query(query).time_field(time_field)
            .query_type("lucene").metrics([elasticsearch.RawData().id("1").settings(
                elasticsearch.ElasticsearchRawDataSettings().size(str(size)))]).bucket_aggs([]))


def promql(expression: str, legend: str = "", ref: str = "A") -> Any:
    return prometheus.Dataquery().ref_id(ref).expr(expression).legend_format(legend).datasource(PROM_DS)


# -- dashboards ------------------------------------------------------------------------------------------
def logs_dashboard() -> Any:
    return (dashboard.Dashboard("CALI logs").uid("cali-logs").tags(["cali"]).time("now-6h", "now").refresh("1m")
            .with_row(dashboard.Row("Errors"))
            .with_panel(timeseries.Panel().title("Error trend by level").datasource(LOGS_DS).span(12).height(8)
                        .with_target(os_count(f"{CALI} AND level:(WARN OR ERROR OR FATAL)", split="level"))
                        .draw_style("bars").stacking(_stacking()))
            .with_panel(timeseries.Panel().title("Errors by service").datasource(LOGS_DS).span(12).height(8)
                        .with_target(os_count(f"{CALI} AND level:(ERROR OR FATAL)", split="service"))
                        .draw_style("bars").stacking(_stacking()))
            .with_panel(barchart.Panel().title("Level distribution per service").datasource(LOGS_DS).span(24)
                        .height(8).with_target(os_terms(CALI, ["service", "level"])))
            .with_row(dashboard.Row("Recent errors"))
            .with_panel(logs_panel.Panel().title("Recent errors").datasource(LOGS_DS).span(24).height(12)
                        .with_target(os_raw(f"{CALI} AND level:(ERROR OR FATAL)", LOGS_DS, "@timestamp"))))


def incidents_dashboard() -> Any:
    return (dashboard.Dashboard("CALI incidents").uid("cali-incidents").tags(["cali"]).time("now-7d", "now")
            .refresh("1m")
            .with_panel(stat.Panel().title("Open incidents").datasource(INCIDENTS_DS).span(6).height(5)
                        .with_target(os_terms("status:open", [], INCIDENTS_DS, "last_seen")))
            .with_panel(barchart.Panel().title("Incidents by service and status").datasource(INCIDENTS_DS)
                        .span(18).height(5).with_target(os_terms("*", ["service", "status"], INCIDENTS_DS,
                                                                 "last_seen")))
            .with_panel(table.Panel().title("Incidents (last seen first)").datasource(INCIDENTS_DS).span(24)
                        .height(14).with_target(os_raw("*", INCIDENTS_DS, "last_seen", 200))))


def pipeline_dashboard() -> Any:
    llm_cost = ("sum(rate(ray_cali_llm_tokens_total[1h])) * 3600 / 1000 * $llm_usd_per_1k_tokens")
    return (dashboard.Dashboard("CALI pipeline").uid("cali-pipeline").tags(["cali"]).time("now-3h", "now")
            .refresh("30s")
            .with_variable(dashboard.ConstantVariable("llm_usd_per_1k_tokens").value("0.002")
                           .label("LLM USD per 1k tokens"))
            .with_row(dashboard.Row("Shards"))
            .with_panel(timeseries.Panel().title("Lag per shard (MillisBehindLatest)").datasource(PROM_DS).unit("ms")
                        .span(12).height(8).with_target(promql("max by (shard) (ray_cali_millis_behind_latest)",
                                                               "{{shard}}")))
            .with_panel(timeseries.Panel().title("Records per second").datasource(PROM_DS).unit("reqps").span(12)
                        .height(8)
                        .with_target(promql("sum by (shard) (rate(ray_cali_records_in_total[5m]))", "in {{shard}}"))
                        .with_target(promql("sum by (shard) (rate(ray_cali_records_archived_total[5m]))",
                                            "archived {{shard}}", "B")))
            .with_panel(timeseries.Panel().title("DLQ rate").datasource(PROM_DS).unit("reqps").span(12).height(8)
                        .with_target(promql("sum by (shard) (rate(ray_cali_records_dead_lettered_total[5m]))",
                                            "{{shard}}"))
                        .with_target(promql('sum by (outcome) (rate(ray_cali_index_documents_total'
                                            '{outcome!="indexed"}[5m]))', "index {{outcome}}", "B")))
            .with_panel(timeseries.Panel().title("Pending archive bytes").datasource(PROM_DS).unit("bytes").span(12)
                        .height(8).with_target(promql("max by (shard) (ray_cali_pending_bytes)", "{{shard}}")))
            .with_row(dashboard.Row("Alerts and Slack"))
            .with_panel(timeseries.Panel().title("Alerts sent and suppressed").datasource(PROM_DS).span(8).height(8)
                        .with_target(promql("sum(rate(ray_cali_alerts_sent_total[5m])) * 60", "sent/min"))
                        .with_target(promql("sum(rate(ray_cali_alerts_suppressed_total[5m])) * 60",
                                            "suppressed/min", "B")))
            .with_panel(timeseries.Panel().title("Slack delivery latency").datasource(PROM_DS).unit("s").span(8)
                        .height(8).with_target(promql(
                            "histogram_quantile(0.95, sum by (le) (rate(ray_cali_slack_delivery_seconds_bucket[5m])))",
                            "p95"))
                        .with_target(promql("sum(increase(ray_cali_slack_delivery_failures_total[5m]))",
                                            "failures / 5 min", "B")))
            .with_panel(timeseries.Panel().title("Outbox depth").datasource(PROM_DS).span(8).height(8)
                        .with_target(promql("max(ray_cali_outbox_depth)", "waiting")))
            .with_row(dashboard.Row("Analysis"))
            .with_panel(timeseries.Panel().title("LLM cost (USD per hour, at the price variable)").datasource(PROM_DS)
                        .unit("currencyUSD").span(8).height(8).with_target(promql(llm_cost, "USD/h")))
            .with_panel(timeseries.Panel().title("LLM calls and budget left").datasource(PROM_DS).span(8).height(8)
                        .with_target(promql("sum by (outcome) (rate(ray_cali_llm_calls_total[5m])) * 60",
                                            "{{outcome}}/min"))
                        .with_target(promql("min(ray_cali_llm_budget_left)", "budget left", "B")))
            .with_panel(timeseries.Panel().title("LLM and retrieval latency (p95)").datasource(PROM_DS).unit("s")
                        .span(8).height(8)
                        .with_target(promql("histogram_quantile(0.95, sum by (le) "
                                            "(rate(ray_cali_llm_latency_seconds_bucket[5m])))", "LLM"))
                        .with_target(promql("histogram_quantile(0.95, sum by (le) "
                                            "(rate(ray_cali_retrieval_seconds_bucket[5m])))", "retrieval", "B"))))


def _stacking() -> Any:
    from grafana_foundation_sdk.builders.common import StackingConfig
    from grafana_foundation_sdk.models.common import StackingMode

    return StackingConfig().mode(StackingMode.NORMAL)


# -- alert rules -----------------------------------------------------------------------------------------
def _rule(uid: str, title: str, query: Any, threshold: float, *, for_: str, summary: str, severity: str,
          relative_s: int = 600) -> Any:
    """A: the query, B: reduce to the last value per series, C: B above the threshold."""
    return (alerting.Rule(title).uid(uid).condition("C").for_val(for_).no_data_state("OK").exec_err_state("Error")
            .labels({"severity": severity, "team": "cali"}).annotations({"summary": summary})
            .with_query(alerting.Query("A").datasource_uid(query.build().datasource.uid).model(query)
                        .relative_time_range(RelativeTimeRange(from_val=relative_s, to=0)))
            .with_query(alerting.Query("B").datasource_uid("__expr__").model(
                expr.TypeReduce().ref_id("B").expression("A").reducer("last")))
            .with_query(alerting.Query("C").datasource_uid("__expr__").model(
                expr.TypeMath().ref_id("C").expression(f"$B > {threshold}"))))


def alert_rules() -> list[Any]:
    return [
        _rule("cali-error-rate", "Error rate over threshold per service",
              os_terms(f"{CALI} AND level:(ERROR OR FATAL)", ["service"]), 100, for_="5m", severity="warning",
              summary="{{ $labels.service }} logged more than 100 errors in 10 minutes"),
        _rule("cali-shard-lag", "Shard lag", promql("max by (shard) (ray_cali_millis_behind_latest)"), 60_000,
              for_="5m", severity="critical",
              summary="shard {{ $labels.shard }} is more than 60 s behind the stream: readers are not keeping up"),
        _rule("cali-dlq-growth", "DLQ growth",
              promql("sum by (shard) (increase(ray_cali_records_dead_lettered_total[10m]))"), 50, for_="10m",
              severity="warning", summary="more than 50 records dead-lettered in 10 min on {{ $labels.shard }}"),
        _rule("cali-slack-failures", "Slack delivery failures",
              promql("sum(increase(ray_cali_slack_delivery_failures_total[10m]))"), 0, for_="5m",
              severity="critical", summary="Slack deliveries are failing: alerts wait in the outbox"),
    ]


# -- files -----------------------------------------------------------------------------------------------
def datasources() -> dict[str, Any]:
    common = {"version": "2.19.0", "flavor": "opensearch", "sigV4Auth": True, "sigV4AuthType": "default",
              "sigV4Region": "${AWS_REGION}", "maxConcurrentShardRequests": 5, "pplEnabled": True}
    return {"apiVersion": 1, "datasources": [
        {"name": "CALI logs (OpenSearch)", "uid": LOGS_DS.uid, "type": OPENSEARCH_TYPE, "access": "proxy",
         "url": "${OPENSEARCH_URL}", "jsonData": {**common, "database": m.LOGS_PATTERN, "timeField": "@timestamp",
                                                 "logMessageField": "message", "logLevelField": "level"}},
        {"name": "CALI incidents (OpenSearch)", "uid": INCIDENTS_DS.uid, "type": OPENSEARCH_TYPE, "access": "proxy",
         "url": "${OPENSEARCH_URL}", "jsonData": {**common, "database": m.INCIDENTS_INDEX, "timeField": "last_seen"}},
        {"name": "CALI metrics (Prometheus)", "uid": PROM_DS.uid, "type": "prometheus", "access": "proxy",
         "url": "${PROMETHEUS_URL}", "isDefault": True, "jsonData": {"timeInterval": "15s"}},
    ]}


def dashboard_provider() -> dict[str, Any]:
    return {"apiVersion": 1, "providers": [{"name": "cali", "folder": "CALI", "type": "file",
                                            "disableDeletion": True, "allowUiUpdates": False,
                                            "options": {"path": "/var/lib/grafana/dashboards/cali"}}]}


def rules_file() -> dict[str, Any]:
    """Grafana's alerting file-provisioning format (apiVersion 1, groups of rules in a folder)."""
    rules = []
    for r in alert_rules():
        d = _plain(r.build())
        rules.append({"uid": d["uid"], "title": d["title"], "condition": d["condition"], "data": d["data"],
                      "noDataState": d["noDataState"], "execErrState": d["execErrState"], "for": d["for"],
                      "labels": d["labels"], "annotations": d["annotations"]})
    return {"apiVersion": 1, "groups": [{"orgId": 1, "name": "cali", "folder": "CALI", "interval": "1m",
                                        "rules": rules}]}


def _plain(obj: Any) -> Any:
    return json.loads(json.dumps(obj, cls=JSONEncoder, sort_keys=True))


def files() -> dict[str, str]:
    out = {f"dashboards/{d.build().uid}.json": json.dumps(_plain(d.build()), indent=2, sort_keys=True) + "\n"
           for d in (logs_dashboard(), incidents_dashboard(), pipeline_dashboard())}
    header = "# Generated by `python -m cali.deploy.grafana generate`: do not edit.\n"
    out["provisioning/datasources/cali.yaml"] = header + yaml.safe_dump(datasources(), sort_keys=False)
    out["provisioning/dashboards/cali.yaml"] = header + yaml.safe_dump(dashboard_provider(), sort_keys=False)
    out["provisioning/alerting/cali-rules.yaml"] = header + yaml.safe_dump(rules_file(), sort_keys=False)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["generate"])
    ap.add_argument("--check", action="store_true", help="Fail if a file differs instead of writing it.")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    stale = []
    for rel, text in files().items():
        path = a.out / rel
        if a.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(rel)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if stale:
        print(f"out of date: {', '.join(stale)}; run python -m cali.deploy.grafana generate", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
