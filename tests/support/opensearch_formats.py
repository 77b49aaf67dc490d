"""The request formats OpenSearch documents, checked field by field (for the loopback OpenSearch of the tests).

Sources: the OpenSearch 2.x documentation of the Bulk API (NDJSON action/metadata and source lines),
index templates and mapping parameters, ingest pipelines and their processors, Index State Management
policies, the search API and its query and aggregation DSL. Each check returns the list of what is
wrong; the loopback server answers 400 with them and records them, so a test fails on any request
real OpenSearch would refuse or read differently.
"""

from __future__ import annotations

from typing import Any

BULK_ACTIONS = {"index", "create", "update", "delete"}
BULK_META = {"_index", "_id", "routing", "if_seq_no", "if_primary_term", "version", "version_type", "pipeline",
             "require_alias"}
BULK_UPDATE_META = BULK_META | {"retry_on_conflict", "_source"}
BULK_UPDATE_BODY = {"doc", "doc_as_upsert", "upsert", "script", "scripted_upsert", "detect_noop", "_source"}

FIELD_TYPES = {
    "keyword": {"ignore_above", "doc_values", "index", "store", "null_value", "normalizer", "fields",
                "eager_global_ordinals", "similarity", "norms", "index_options", "split_queries_on_whitespace",
                "boost"},
    "text": {"analyzer", "search_analyzer", "search_quote_analyzer", "fields", "index", "store", "norms",
             "index_options", "position_increment_gap", "fielddata", "boost", "term_vector", "similarity",
             "index_prefixes", "index_phrases"},
    "date": {"format", "doc_values", "index", "store", "null_value", "ignore_malformed", "locale", "boost"},
    "long": {"doc_values", "index", "store", "null_value", "coerce", "ignore_malformed", "boost"},
    "integer": {"doc_values", "index", "store", "null_value", "coerce", "ignore_malformed", "boost"},
    "double": {"doc_values", "index", "store", "null_value", "coerce", "ignore_malformed", "boost"},
    "float": {"doc_values", "index", "store", "null_value", "coerce", "ignore_malformed", "boost"},
    "boolean": {"doc_values", "index", "store", "null_value", "boost"},
    "object": {"properties", "dynamic", "enabled"},
    "nested": {"properties", "dynamic", "include_in_parent", "include_in_root"},
}
MAPPING_ROOT = {"properties", "dynamic", "dynamic_templates", "date_detection", "numeric_detection",
                "dynamic_date_formats", "_source", "_meta", "_routing"}
TEMPLATE_ROOT = {"index_patterns", "template", "priority", "composed_of", "version", "_meta", "data_stream"}
TEMPLATE_BODY = {"settings", "mappings", "aliases"}

PROCESSORS = {
    "set": ({"field"}, {"value", "copy_from", "override", "ignore_empty_value", "media_type"}),
    "date": ({"field", "formats"}, {"target_field", "timezone", "locale", "output_format"}),
    "uppercase": ({"field"}, {"target_field", "ignore_missing"}),
    "lowercase": ({"field"}, {"target_field", "ignore_missing"}),
    "remove": ({"field"}, {"ignore_missing", "exclude_field"}),
    "rename": ({"field", "target_field"}, {"ignore_missing", "override_target"}),
}
PROCESSOR_COMMON = {"if", "ignore_failure", "on_failure", "tag", "description"}

ISM_ACTIONS = {"delete", "rollover", "read_only", "read_write", "replica_count", "force_merge", "shrink", "close",
               "open", "notification", "snapshot", "index_priority", "allocation", "rollup", "transform", "alias"}
ISM_CONDITIONS = {"min_index_age", "min_doc_count", "min_size", "min_rollover_age", "cron"}

SEARCH_BODY = {"query", "size", "from", "sort", "aggs", "aggregations", "search_after", "track_total_hits",
               "_source", "timeout", "fields", "stored_fields", "docvalue_fields", "highlight", "min_score",
               "post_filter", "collapse", "explain", "version", "seq_no_primary_term", "terminate_after"}
QUERIES = {"bool", "term", "terms", "range", "match", "match_all", "match_phrase", "simple_query_string",
           "query_string", "exists", "prefix", "wildcard", "ids"}
BOOL_CLAUSES = {"filter", "must", "must_not", "should", "minimum_should_match", "boost"}
SIMPLE_QUERY_STRING = {"query", "fields", "default_operator", "analyzer", "flags", "lenient",
                       "minimum_should_match", "quote_field_suffix", "auto_generate_synonyms_phrase_query",
                       "fuzzy_max_expansions", "fuzzy_prefix_length", "fuzzy_transpositions", "analyze_wildcard",
                       "boost"}
RANGE_PARAMS = {"gte", "gt", "lte", "lt", "format", "time_zone", "relation", "boost"}
AGGS = {"date_histogram": {"field", "fixed_interval", "calendar_interval", "min_doc_count", "extended_bounds",
                           "hard_bounds", "format", "time_zone", "offset", "order", "keyed", "missing"},
        "terms": {"field", "size", "order", "min_doc_count", "missing", "include", "exclude", "shard_size"},
        "value_count": {"field"}, "cardinality": {"field", "precision_threshold"}}


def bulk(body: bytes, path_index: str | None) -> tuple[list[str], list[tuple[str, dict[str, Any], Any]]]:
    """Problems, and the parsed (action, metadata, source) operations of a _bulk body."""
    import json

    problems: list[str] = []
    ops: list[tuple[str, dict[str, Any], Any]] = []
    if not body.endswith(b"\n"):
        problems.append("bulk body must end with a newline")
    lines = body.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    i = 0
    while i < len(lines):
        try:
            action_line = json.loads(lines[i])
        except ValueError as exc:
            return problems + [f"line {i + 1}: not JSON: {exc}"], ops
        if not isinstance(action_line, dict) or len(action_line) != 1:
            return problems + [f"line {i + 1}: an action line is one object with one key"], ops
        action, meta = next(iter(action_line.items()))
        if action not in BULK_ACTIONS:
            problems.append(f"line {i + 1}: unknown bulk action {action!r}")
        allowed = BULK_UPDATE_META if action == "update" else BULK_META
        if not isinstance(meta, dict):
            return problems + [f"line {i + 1}: action metadata must be an object"], ops
        problems += [f"line {i + 1}: unknown metadata {k!r} for {action}" for k in meta if k not in allowed]
        if "_index" not in meta and not path_index:
            problems.append(f"line {i + 1}: no _index in the metadata and none in the path")
        if action in ("create", "update", "delete") and "_id" not in meta:
            problems.append(f"line {i + 1}: {action} needs an _id")
        source = None
        if action != "delete":
            i += 1
            if i >= len(lines):
                return problems + [f"{action} at the end of the body has no source line"], ops
            try:
                source = json.loads(lines[i])
            except ValueError as exc:
                return problems + [f"line {i + 1}: source is not JSON: {exc}"], ops
            if not isinstance(source, dict):
                problems.append(f"line {i + 1}: a document source must be a JSON object")
            elif action == "update":
                problems += [f"line {i + 1}: unknown update key {k!r}" for k in source if k not in BULK_UPDATE_BODY]
        ops.append((action, meta, source))
        i += 1
    return problems, ops


def mapping(m: Any, where: str = "mappings") -> list[str]:
    if not isinstance(m, dict):
        return [f"{where} must be an object"]
    problems = [f"{where}: unknown mapping parameter {k!r}" for k in m if k not in MAPPING_ROOT]
    for i, dt in enumerate(m.get("dynamic_templates") or []):
        if not isinstance(dt, dict) or len(dt) != 1:
            problems.append(f"{where}.dynamic_templates[{i}]: one object with one named template")
            continue
        body = next(iter(dt.values()))
        if "mapping" not in body or not ({"match_mapping_type", "match", "path_match", "unmatch"} & set(body)):
            problems.append(f"{where}.dynamic_templates[{i}]: needs a matcher and a mapping")
    problems += _properties(m.get("properties") or {}, where)
    if m.get("dynamic") not in (None, True, False, "strict", "true", "false"):
        problems.append(f"{where}.dynamic: {m['dynamic']!r}")
    return problems


def _properties(props: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    for name, spec in props.items():
        path = f"{where}.properties.{name}"
        if not isinstance(spec, dict):
            problems.append(f"{path}: must be an object")
            continue
        kind = spec.get("type", "object" if "properties" in spec or "enabled" in spec else None)
        if kind not in FIELD_TYPES:
            problems.append(f"{path}: unknown field type {kind!r}")
            continue
        problems += [f"{path}: {k!r} is not a parameter of {kind}" for k in spec if k != "type" and
                     k not in FIELD_TYPES[kind]]
        if spec.get("enabled") is False and "properties" in spec:
            problems.append(f"{path}: a disabled object has no properties")
        problems += _properties(spec.get("properties") or {}, path)
        for sub, sub_spec in (spec.get("fields") or {}).items():
            problems += _properties({sub: sub_spec}, f"{path}.fields")
    return problems


def index_template(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["index template body must be an object"]
    problems = [f"unknown index template key {k!r}" for k in body if k not in TEMPLATE_ROOT]
    patterns = body.get("index_patterns")
    if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) for p in patterns):
        problems.append("index_patterns must be a non-empty list of strings")
    tpl = body.get("template") or {}
    problems += [f"unknown template key {k!r}" for k in tpl if k not in TEMPLATE_BODY]
    if "mappings" in tpl:
        problems += mapping(tpl["mappings"], "template.mappings")
    settings = tpl.get("settings") or {}
    analysis = settings.get("analysis") or {}
    for kind in analysis:
        if kind not in ("analyzer", "tokenizer", "char_filter", "filter", "normalizer"):
            problems.append(f"settings.analysis: unknown section {kind!r}")
    for name, spec in (analysis.get("analyzer") or {}).items():
        if spec.get("type") == "custom":
            if "tokenizer" not in spec:
                problems.append(f"analyzer {name}: a custom analyzer needs a tokenizer")
            for cf in spec.get("char_filter", []):
                if cf not in (analysis.get("char_filter") or {}) and cf not in ("html_strip",):
                    problems.append(f"analyzer {name}: char_filter {cf!r} is not defined")
            if spec.get("tokenizer") not in (analysis.get("tokenizer") or {}) and \
                    spec.get("tokenizer") not in ("standard", "whitespace", "keyword", "letter"):
                problems.append(f"analyzer {name}: tokenizer {spec.get('tokenizer')!r} is not defined")
    return problems


def pipeline(body: Any) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("processors"), list):
        return ["an ingest pipeline needs a processors list"]
    problems = [f"unknown pipeline key {k!r}" for k in body if k not in ("description", "processors", "on_failure",
                                                                           "version", "_meta")]
    for i, p in enumerate(body["processors"]):
        if not isinstance(p, dict) or len(p) != 1:
            problems.append(f"processors[{i}]: one object with one processor type")
            continue
        kind, spec = next(iter(p.items()))
        if kind not in PROCESSORS:
            problems.append(f"processors[{i}]: unknown processor {kind!r}")
            continue
        required, optional = PROCESSORS[kind]
        problems += [f"processors[{i}].{kind}: missing {r!r}" for r in required if r not in spec]
        problems += [f"processors[{i}].{kind}: unknown option {k!r}" for k in spec
                     if k not in required | optional | PROCESSOR_COMMON]
        if kind == "set" and ("value" in spec) == ("copy_from" in spec):
            problems.append(f"processors[{i}].set: exactly one of value and copy_from")
    return problems


def ism_policy(body: Any) -> list[str]:
    if not isinstance(body, dict) or set(body) != {"policy"}:
        return ["an ISM policy body is {\"policy\": {...}}"]
    p = body["policy"]
    problems = [f"unknown policy key {k!r}" for k in p if k not in ("description", "default_state", "states",
                                                                  "ism_template", "error_notification",
                                                                  "schema_version", "policy_id")]
    states = p.get("states") or []
    names = {s.get("name") for s in states if isinstance(s, dict)}
    if not states:
        problems.append("policy.states must not be empty")
    if p.get("default_state") not in names:
        problems.append(f"default_state {p.get('default_state')!r} is not one of the states {sorted(names)}")
    for s in states:
        for a in s.get("actions", []):
            kinds = [k for k in a if k not in ("retry", "timeout")]
            if len(kinds) != 1 or kinds[0] not in ISM_ACTIONS:
                problems.append(f"state {s.get('name')}: unknown action {a}")
        for t in s.get("transitions", []):
            if t.get("state_name") not in names:
                problems.append(f"state {s.get('name')}: transition to unknown state {t.get('state_name')!r}")
            problems += [f"state {s.get('name')}: unknown condition {c!r}" for c in (t.get("conditions") or {})
                         if c not in ISM_CONDITIONS]
    templates = p.get("ism_template")
    for t in templates if isinstance(templates, list) else [templates] if templates else []:
        if not isinstance(t.get("index_patterns"), list):
            problems.append("ism_template.index_patterns must be a list")
    return problems


def search(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return ["a search body must be an object"]
    problems = [f"unknown search key {k!r}" for k in body if k not in SEARCH_BODY]
    if "query" in body:
        problems += query(body["query"])
    for name, agg in (body.get("aggs") or body.get("aggregations") or {}).items():
        problems += aggregation(name, agg)
    if "search_after" in body and "sort" not in body:
        problems.append("search_after needs a sort")
    return problems


def query(q: Any, where: str = "query") -> list[str]:
    if not isinstance(q, dict) or len(q) != 1:
        return [f"{where}: a query is one object with one query type"]
    kind, spec = next(iter(q.items()))
    if kind not in QUERIES:
        return [f"{where}: unknown query [{kind}]"]
    problems: list[str] = []
    if kind == "bool":
        problems += [f"{where}.bool: unknown clause {k!r}" for k in spec if k not in BOOL_CLAUSES]
        for clause in ("filter", "must", "must_not", "should"):
            items = spec.get(clause, [])
            for i, sub in enumerate(items if isinstance(items, list) else [items]):
                problems += query(sub, f"{where}.bool.{clause}[{i}]")
    elif kind == "simple_query_string":
        problems += [f"{where}: unknown simple_query_string option {k!r}" for k in spec if k not in SIMPLE_QUERY_STRING]
        if str(spec.get("default_operator", "or")).lower() not in ("and", "or"):
            problems.append(f"{where}: default_operator is AND or OR")
    elif kind == "range":
        for field, params in spec.items():
            problems += [f"{where}.range.{field}: unknown parameter {k!r}" for k in params if k not in RANGE_PARAMS]
    elif kind == "terms" and not all(isinstance(v, list) for k, v in spec.items() if k != "boost"):
        problems.append(f"{where}.terms: values must be a list")
    return problems


def aggregation(name: str, agg: Any) -> list[str]:
    kinds = [k for k in agg if k not in ("aggs", "aggregations", "meta")]
    if len(kinds) != 1 or kinds[0] not in AGGS:
        return [f"aggregation {name}: unknown or several types {kinds}"]
    kind = kinds[0]
    problems = [f"aggregation {name}.{kind}: unknown parameter {k!r}" for k in agg[kind] if k not in AGGS[kind]]
    if kind == "date_histogram" and ("fixed_interval" in agg[kind]) == ("calendar_interval" in agg[kind]):
        problems.append(f"aggregation {name}: exactly one of fixed_interval and calendar_interval")
    for sub, spec in (agg.get("aggs") or agg.get("aggregations") or {}).items():
        problems += aggregation(sub, spec)
    return problems
