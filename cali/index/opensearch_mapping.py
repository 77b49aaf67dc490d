"""What CALI declares in OpenSearch: index templates, the Firehose pipeline, the ISM policy, and its queries.

Log indices are `cali-logs-YYYY-MM-DD`, the names Firehose gives with `index_name = "cali-logs"` and
`index_rotation_period = "OneDay"` (infra/terraform/stream.tf), so one template maps both what Firehose
writes (the raw wire JSON of each line) and what CALI writes (validated records, origin "cali").
"""

from __future__ import annotations

from typing import Any

from cali.core.index import (
    STACK_SEARCHED_CHARS,
    TOTAL_CAP,
    IncidentQuery,
    LogQuery,
    TrendQuery,
    parse_cursor,
    to_millis,
    words,
)

LOGS_PREFIX = "cali-logs"
LOGS_PATTERN = f"{LOGS_PREFIX}-*"
INCIDENTS_INDEX = "cali-incidents"
PIPELINE = "cali-logs"
ISM_POLICY = "cali-logs-retention"

_KEYWORD = {"type": "keyword", "ignore_above": 1024}
_WORDS = r"[^\p{L}\p{N}]+"  # Java regex: a run of anything but letters and digits separates words

ANALYSIS = {
    "char_filter": {"cali_stack_head": {"type": "pattern_replace", "pattern": f"(?s)^(.{{{STACK_SEARCHED_CHARS}}}).*$",
                                        "replacement": "$1"}},
    "tokenizer": {"cali_words": {"type": "pattern", "pattern": _WORDS}},
    "analyzer": {
        "cali_words": {"type": "custom", "tokenizer": "cali_words", "filter": ["lowercase"]},
        "cali_stack": {"type": "custom", "char_filter": ["cali_stack_head"], "tokenizer": "cali_words",
                       "filter": ["lowercase"]},
    },
}


def logs_template(shards: int = 1) -> dict[str, Any]:
    """The index template of `cali-logs-*`: explicit fields, other strings as keywords, no date guessing
    (Firehose's raw `time` comes in many formats: a guessed date mapping would reject the next format)."""
    return {
        "index_patterns": [LOGS_PATTERN],
        "priority": 100,
        "template": {
            "settings": {"index": {"number_of_shards": shards, "refresh_interval": "5s",
                                   "default_pipeline": PIPELINE}, "analysis": ANALYSIS},
            "mappings": {
                "date_detection": False,
                "dynamic_templates": [{"strings_as_keywords": {"match_mapping_type": "string", "mapping": _KEYWORD}}],
                "properties": {
                    "@timestamp": {"type": "date"},
                    "@ingested": {"type": "date"},
                    "level": {"type": "keyword"}, "service": {"type": "keyword"}, "env": {"type": "keyword"},
                    "host": {"type": "keyword"}, "trace_id": {"type": "keyword"}, "span_id": {"type": "keyword"},
                    "fingerprint": {"type": "keyword"}, "incident_key": {"type": "keyword"},
                    "event_id": {"type": "keyword"}, "origin": {"type": "keyword"},
                    "log_file": {"type": "keyword"}, "log_offset": {"type": "long"},
                    "message": {"type": "text", "analyzer": "cali_words",
                                "fields": {"keyword": {"type": "keyword", "ignore_above": 512}}},
                    "stack": {"type": "text", "analyzer": "cali_stack"},
                    "time": {"type": "keyword"},  # Firehose: the raw header time, as the line wrote it
                    "attributes": {"type": "object", "dynamic": True},
                },
            },
        },
        "_meta": {"owner": "cali", "doc": "docs/console.md"},
    }


def incidents_template() -> dict[str, Any]:
    return {
        "index_patterns": [INCIDENTS_INDEX],
        "priority": 100,
        "template": {
            "settings": {"index": {"number_of_shards": 1, "refresh_interval": "1s"}, "analysis": ANALYSIS},
            "mappings": {
                "dynamic": False,
                "properties": {
                    "incident_key": {"type": "keyword"}, "fingerprint": {"type": "keyword"},
                    "service": {"type": "keyword"}, "level": {"type": "keyword"}, "severity": {"type": "keyword"},
                    "status": {"type": "keyword"}, "env": {"type": "keyword"}, "host": {"type": "keyword"},
                    "trace_id": {"type": "keyword"},
                    "title": {"type": "text", "analyzer": "cali_words",
                              "fields": {"keyword": {"type": "keyword", "ignore_above": 512}}},
                    "template": {"type": "text", "analyzer": "cali_words"},
                    "message": {"type": "text", "analyzer": "cali_words"},
                    "first_seen": {"type": "date"}, "last_seen": {"type": "date"}, "updated_at": {"type": "date"},
                    "count": {"type": "long"}, "alerts_total": {"type": "integer"},
                    # Kept whole for the console, never searched: no mapping explosion from analysis JSON.
                    "alerts": {"type": "object", "enabled": False},
                    "windows": {"type": "object", "enabled": False},
                    "analysis": {"type": "object", "enabled": False},
                    "stack_head": {"type": "object", "enabled": False},
                    "stack": {"type": "object", "enabled": False},
                    "resolution": {"properties": {
                        "note": {"type": "text", "analyzer": "cali_words"}, "resolved_at": {"type": "date"},
                        "resolved_by": {"type": "keyword"}, "category": {"type": "keyword"},
                        "kb_id": {"type": "keyword"}}},
                },
            },
        },
        "_meta": {"owner": "cali", "doc": "docs/console.md"},
    }


def firehose_pipeline() -> dict[str, Any]:
    """The logs indices' default pipeline: what Firehose sends gets `@timestamp` (its ingest time) and
    `origin: firehose`; documents CALI writes already carry both and pass unchanged."""
    return {
        "description": "CALI: time and origin for raw lines Firehose delivers (docs/console.md)",
        "processors": [
            {"date": {"field": "@ingested", "target_field": "@timestamp", "formats": ["ISO8601"],
                      "if": "ctx['@timestamp'] == null && ctx['@ingested'] != null", "ignore_failure": True}},
            {"set": {"field": "origin", "value": "firehose", "override": False}},
            {"uppercase": {"field": "level", "ignore_missing": True, "ignore_failure": True,
                           "if": "ctx.origin == 'firehose'"}},
        ],
    }


def ism_policy(retention_days: int) -> dict[str, Any]:
    """Delete each daily logs index `retention_days` after it was created (Firehose's and CALI's alike)."""
    return {"policy": {
        "description": f"CALI logs: delete after {retention_days} days",
        "default_state": "hot",
        "states": [
            {"name": "hot", "actions": [],
             "transitions": [{"state_name": "delete", "conditions": {"min_index_age": f"{retention_days}d"}}]},
            {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
        ],
        "ism_template": [{"index_patterns": [LOGS_PATTERN], "priority": 100}],
    }}


# -- queries -------------------------------------------------------------------------------------------
def _filters(services: tuple[str, ...], levels: tuple[str, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"term": {"origin": "cali"}}]  # Firehose's raw copies are not counted twice
    if services:
        out.append({"terms": {"service": list(services)}})
    if levels:
        out.append({"terms": {"level": list(levels)}})
    return out


def log_search(q: LogQuery) -> dict[str, Any]:
    filters = _filters(q.services, q.levels)
    if q.start is not None or q.end is not None:
        rng: dict[str, Any] = {"format": "epoch_millis"}
        if q.start is not None:
            rng["gte"] = to_millis(q.start)
        if q.end is not None:
            rng["lt"] = to_millis(q.end)
        filters.append({"range": {"@timestamp": rng}})
    if q.incident_key:
        filters.append({"term": {"incident_key": q.incident_key}})
    must: list[dict[str, Any]] = []
    terms = words(q.text)
    if terms:
        must.append({"simple_query_string": {"query": " ".join(terms), "fields": ["message", "stack"],
                                             "default_operator": "and"}})
    body: dict[str, Any] = {
        "query": {"bool": {"filter": filters, "must": must}},
        "sort": [{"@timestamp": {"order": "desc"}}, {"event_id": {"order": "desc"}}],
        "size": q.limit + 1, "track_total_hits": TOTAL_CAP,
    }
    if q.cursor:
        ms, event_id = parse_cursor(q.cursor)
        body["search_after"] = [ms, event_id]
    return body


def trend_search(q: TrendQuery) -> dict[str, Any]:
    start, end = to_millis(q.start), to_millis(q.end)
    filters = _filters(q.services, q.levels)
    filters.append({"range": {"@timestamp": {"gte": start, "lt": end, "format": "epoch_millis"}}})
    step = q.interval_s * 1000
    return {
        "size": 0,
        "query": {"bool": {"filter": filters}},
        "aggs": {"t": {
            "date_histogram": {"field": "@timestamp", "fixed_interval": f"{q.interval_s // 60}m", "min_doc_count": 0,
                               "extended_bounds": {"min": start // step * step, "max": end - 1}},
            "aggs": {"s": {"terms": {"field": q.by, "size": 100}}},
        }},
    }


def incident_search(q: IncidentQuery) -> dict[str, Any]:
    filters: list[dict[str, Any]] = []
    if q.status:
        filters.append({"term": {"status": q.status}})
    if q.services:
        filters.append({"terms": {"service": list(q.services)}})
    must: list[dict[str, Any]] = []
    terms = words(q.text)
    if terms:
        must.append({"simple_query_string": {"query": " ".join(terms), "fields": ["title", "template", "service"],
                                             "default_operator": "and"}})
    return {"query": {"bool": {"filter": filters, "must": must}}, "size": q.limit,
            "sort": [{"last_seen": {"order": "desc"}}]}
