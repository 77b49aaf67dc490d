"""What the loopback OpenSearch does with accepted requests: mapping, analysis, pipelines, queries, aggregations.

A small in-memory model of OpenSearch's documented behaviour, enough to answer the index adapter's
requests as OpenSearch would: documents are mapped by the matching index template (a value a date or
long field cannot parse is rejected, as `mapper_parsing_exception`), text is analysed with the
analyzers the template declares, default pipelines run, and searches return sort values, totals and
buckets in OpenSearch's response shapes.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import regex  # Java-style \p{L} classes, as the pattern tokenizers declare them


class Rejected(Exception):
    def __init__(self, kind: str, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.kind, self.reason, self.status = kind, reason, status


def parse_date(value: Any) -> int:
    """strict_date_optional_time||epoch_millis, OpenSearch's default date format, to epoch millis."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        if value.isdigit():
            return int(value)
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() * 1000)
    raise ValueError(value)


@dataclass
class Analyzer:
    char_filters: list[tuple[Any, str]] = field(default_factory=list)
    split: Any = None
    lowercase: bool = False

    def tokens(self, text: str) -> list[str]:
        for pattern, replacement in self.char_filters:
            text = pattern.sub(replacement, text)
        parts = [t for t in self.split.split(text) if t] if self.split is not None else regex.findall(r"\w+", text)
        return [t.lower() for t in parts] if self.lowercase else parts


def build_analyzers(analysis: dict[str, Any]) -> dict[str, Analyzer]:
    out = {"standard": Analyzer(lowercase=True)}
    char_filters = analysis.get("char_filter") or {}
    tokenizers = analysis.get("tokenizer") or {}
    for name, spec in (analysis.get("analyzer") or {}).items():
        a = Analyzer(lowercase="lowercase" in spec.get("filter", []))
        for cf in spec.get("char_filter", []):
            c = char_filters[cf]
            a.char_filters.append((regex.compile(c["pattern"]), re.sub(r"\$(\d)", r"\\\1", c["replacement"])))
        tok = tokenizers.get(spec.get("tokenizer"))
        if tok and tok.get("type") == "pattern":
            a.split = regex.compile(tok["pattern"])
        out[name] = a
    return out


@dataclass
class Index:
    name: str
    mappings: dict[str, Any]
    settings: dict[str, Any]
    analyzers: dict[str, Analyzer]
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # id -> (seq_no, version, primary_term)
    seq: int = 0

    def field_spec(self, path: str) -> dict[str, Any] | None:
        node: dict[str, Any] = {"properties": self.mappings.get("properties", {})}
        for part in path.split("."):
            props = node.get("properties") or {}
            if part in props:
                node = props[part]
            elif node.get("fields") and part in node["fields"]:
                node = node["fields"][part]
            else:
                return None
        return node

    def check(self, doc: dict[str, Any], doc_id: str) -> None:
        """Rejects what the mapping cannot parse; adds dynamic fields."""
        self._check(doc, self.mappings.setdefault("properties", {}), "", doc_id,
                    self.mappings.get("dynamic", True))

    def _check(self, doc: dict[str, Any], props: dict[str, Any], prefix: str, doc_id: str, dynamic: Any) -> None:
        for key, value in doc.items():
            spec = props.get(key)
            path = prefix + key
            if spec is None:
                if dynamic in (False, "false"):
                    continue
                if dynamic == "strict":
                    raise Rejected("strict_dynamic_mapping_exception", f"mapping set to strict, dynamic "
                                                                       f"introduction of [{key}] is not allowed")
                spec = self._dynamic(value)
                props[key] = spec
            kind = spec.get("type", "object")
            if spec.get("enabled") is False or value is None:
                continue
            try:
                if kind == "date":
                    for v in value if isinstance(value, list) else [value]:
                        parse_date(v)
                elif kind in ("long", "integer"):
                    for v in value if isinstance(value, list) else [value]:
                        if isinstance(v, bool) or not isinstance(v, int | float | str) or float(v) != int(float(v)):
                            raise ValueError(v)
                elif kind in ("keyword", "text") and isinstance(value, dict):
                    raise ValueError("an object")
                elif kind == "object":
                    if not isinstance(value, dict):
                        raise ValueError(f"a {type(value).__name__} where an object is mapped")
                    self._check(value, spec.setdefault("properties", {}), path + ".", doc_id,
                                spec.get("dynamic", dynamic))
            except (ValueError, TypeError) as exc:
                raise Rejected("mapper_parsing_exception", f"failed to parse field [{path}] of type [{kind}] in "
                                                           f"document with id '{doc_id}'. Preview: {exc}") from None

    def _dynamic(self, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return {"type": "object", "properties": {}}
        if isinstance(value, str):
            for dt in self.mappings.get("dynamic_templates", []):
                body = next(iter(dt.values()))
                if body.get("match_mapping_type") == "string":
                    return dict(body["mapping"])
            return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
        if isinstance(value, bool):
            return {"type": "boolean"}
        return {"type": "long"} if isinstance(value, int) else {"type": "float"}

    def put(self, doc_id: str, doc: dict[str, Any]) -> tuple[str, int, int]:
        self.check(doc, doc_id)
        created = doc_id not in self.docs
        self.seq += 1
        version = 1 if created else self.meta[doc_id][1] + 1
        self.docs[doc_id] = doc
        self.meta[doc_id] = (self.seq, version, 1)
        return ("created" if created else "updated"), self.seq, version


# -- pipelines ---------------------------------------------------------------------------------------------
_COND = re.compile(r"ctx(?:\['([^']+)'\]|\.(\w+))\s*(==|!=)\s*(null|'[^']*')")


def condition(expr: str, ctx: dict[str, Any]) -> bool:
    """The Painless conditions the pipelines here use: ctx field ==/!= null or a string, joined by && or ||."""
    def atom(text: str) -> bool:
        m = _COND.fullmatch(text.strip())
        if m is None:
            raise Rejected("script_exception", f"the loopback OpenSearch cannot evaluate {text!r}")
        value = ctx.get(m.group(1) or m.group(2))
        want = None if m.group(4) == "null" else m.group(4)[1:-1]
        return (value == want) if m.group(3) == "==" else (value != want)

    return any(all(atom(a) for a in part.split("&&")) for part in expr.split("||"))


def run_pipeline(processors: list[dict[str, Any]], doc: dict[str, Any]) -> dict[str, Any]:
    for p in processors:
        kind, spec = next(iter(p.items()))
        if "if" in spec and not condition(spec["if"], doc):
            continue
        try:
            if kind == "set":
                if spec.get("override", True) or doc.get(spec["field"]) in (None, ""):
                    doc[spec["field"]] = spec["value"] if "value" in spec else doc.get(spec["copy_from"])
            elif kind == "date":
                ms = parse_date(doc[spec["field"]])
                doc[spec.get("target_field", "@timestamp")] = datetime.fromtimestamp(ms / 1000, UTC).isoformat()
            elif kind in ("uppercase", "lowercase"):
                if spec["field"] not in doc:
                    if spec.get("ignore_missing"):
                        continue
                    raise KeyError(spec["field"])
                value = doc[spec["field"]]
                if not isinstance(value, str):
                    raise TypeError(f"field [{spec['field']}] of type [{type(value).__name__}] cannot be cast")
                doc[spec.get("target_field", spec["field"])] = value.upper() if kind == "uppercase" else value.lower()
        except (KeyError, TypeError, ValueError) as exc:
            if not spec.get("ignore_failure"):
                raise Rejected("illegal_argument_exception", f"{kind} processor: {exc}") from None
    return doc


# -- search ------------------------------------------------------------------------------------------------
def values(doc: dict[str, Any], path: str) -> list[Any]:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return []
        node = node[part]
    return node if isinstance(node, list) else [node]


def matches(ix: Index, doc: dict[str, Any], q: dict[str, Any]) -> bool:
    kind, spec = next(iter(q.items()))
    if kind == "match_all":
        return True
    if kind == "bool":
        def many(clause: str) -> list[dict[str, Any]]:
            v = spec.get(clause, [])
            return v if isinstance(v, list) else [v]
        if not all(matches(ix, doc, s) for s in many("filter") + many("must")):
            return False
        if any(matches(ix, doc, s) for s in many("must_not")):
            return False
        should = many("should")
        need = spec.get("minimum_should_match", 0 if many("filter") + many("must") else 1)
        return not should or sum(matches(ix, doc, s) for s in should) >= int(need)
    if kind in ("term", "terms"):
        (fname, want), = [(k, v) for k, v in spec.items() if k != "boost"]
        wants = want if kind == "terms" else [want["value"] if isinstance(want, dict) else want]
        fspec = ix.field_spec(fname) or {}
        have = values(doc, fname)
        if fspec.get("type") == "text":
            tokens = {t for v in have for t in _analyzer(ix, fspec).tokens(str(v))}
            return any(str(w) in tokens for w in wants)
        return any(str(h) == str(w) for h in have for w in wants)
    if kind == "exists":
        return bool(values(doc, spec["field"]))
    if kind == "range":
        (fname, params), = spec.items()
        is_date = (ix.field_spec(fname) or {}).get("type") == "date"
        conv = parse_date if is_date else float
        for v in values(doc, fname):
            x = conv(v)
            ok = all(op not in params or cmp(x, conv(params[op])) for op, cmp in (
                ("gte", lambda a, b: a >= b), ("gt", lambda a, b: a > b), ("lte", lambda a, b: a <= b),
                ("lt", lambda a, b: a < b)))
            if ok:
                return True
        return False
    if kind == "simple_query_string":
        fields = spec.get("fields") or ["*"]
        terms = [t for t in regex.split(r"\s+", spec["query"]) if t]
        hits = []
        for term in terms:
            found = False
            for fname in fields:
                fspec = ix.field_spec(fname) or {}
                have = values(doc, fname)
                if fspec.get("type") == "text":
                    a = _analyzer(ix, fspec)
                    wanted = a.tokens(term)
                    tokens = {t for v in have for t in a.tokens(str(v))}
                    found = found or (bool(wanted) and all(w in tokens for w in wanted))
                else:
                    found = found or any(str(h) == term for h in have)
            hits.append(found)
        op_and = str(spec.get("default_operator", "or")).lower() == "and"
        return all(hits) if op_and else any(hits)
    raise Rejected("parsing_exception", f"the loopback OpenSearch does not implement [{kind}]")


def _analyzer(ix: Index, fspec: dict[str, Any]) -> Analyzer:
    return ix.analyzers.get(fspec.get("analyzer", "standard"), ix.analyzers["standard"])


def sort_values(ix: Index, doc: dict[str, Any], sort: list[Any]) -> list[Any]:
    out = []
    for s in sort:
        fname = s if isinstance(s, str) else next(iter(s))
        have = values(doc, fname)
        if not have:
            out.append(None)
            continue
        is_date = (ix.field_spec(fname) or {}).get("type") == "date"
        out.append(parse_date(have[0]) if is_date else have[0])
    return out


def order_of(s: Any) -> str:
    if isinstance(s, str):
        return "asc"
    spec = next(iter(s.values()))
    return spec if isinstance(spec, str) else spec.get("order", "asc")


def interval_ms(text: str) -> int:
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text)
    if m is None:
        raise Rejected("illegal_argument_exception", f"failed to parse fixed_interval [{text}]")
    return int(m.group(1)) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[m.group(2)]


def aggregate(ix_docs: list[tuple[Index, dict[str, Any]]], name: str, agg: dict[str, Any]) -> dict[str, Any]:
    kind = next(k for k in agg if k not in ("aggs", "aggregations", "meta"))
    spec = agg[kind]
    subs = agg.get("aggs") or agg.get("aggregations") or {}

    def with_subs(bucket: dict[str, Any], members: list[tuple[Index, dict[str, Any]]]) -> dict[str, Any]:
        for sub_name, sub in subs.items():
            bucket[sub_name] = aggregate(members, sub_name, sub)
        return bucket

    if kind == "date_histogram":
        step = interval_ms(spec["fixed_interval"])
        groups: dict[int, list[tuple[Index, dict[str, Any]]]] = {}
        for ix, doc in ix_docs:
            for v in values(doc, spec["field"])[:1]:
                groups.setdefault(parse_date(v) // step * step, []).append((ix, doc))
        keys = set(groups)
        bounds = spec.get("extended_bounds")
        if bounds and spec.get("min_doc_count", 1) == 0:
            lo, hi = parse_date(bounds["min"]) // step * step, parse_date(bounds["max"])
            keys |= set(range(lo, hi + 1, step))
        if keys and spec.get("min_doc_count", 1) == 0:
            keys |= set(range(min(keys), max(keys) + 1, step))
        buckets = []
        for k in sorted(keys):
            members = groups.get(k, [])
            if len(members) < spec.get("min_doc_count", 1):
                continue
            buckets.append(with_subs({"key_as_string": datetime.fromtimestamp(k / 1000, UTC).isoformat()
                                      .replace("+00:00", "Z"), "key": k, "doc_count": len(members)}, members))
        return {"buckets": buckets}
    if kind == "terms":
        groups2: dict[Any, list[tuple[Index, dict[str, Any]]]] = {}
        for ix, doc in ix_docs:
            for v in set(map(str, values(doc, spec["field"]))):
                groups2.setdefault(v, []).append((ix, doc))
        ordered = sorted(groups2.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        size = spec.get("size", 10)
        shown = ordered[:size]
        return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": sum(len(m) for _, m in ordered[size:]),
                "buckets": [with_subs({"key": k, "doc_count": len(m)}, m) for k, m in shown]}
    raise Rejected("parsing_exception", f"the loopback OpenSearch does not implement aggregation [{kind}]")


def target_indices(indices: dict[str, Index], target: str) -> list[Index]:
    out = []
    for part in target.split(","):
        out += [ix for name, ix in sorted(indices.items()) if fnmatch.fnmatchcase(name, part) and ix not in out]
    return out
