"""A loopback OpenSearch for the index contract tests: checks every request against OpenSearch's documented
formats (tests/support/opensearch_formats.py) and answers as OpenSearch does (opensearch_engine.py).

OpenSearch itself cannot run on these machines (no JVM service, no network). What this proves: every
request the adapter sends is well-formed for OpenSearch 2.x, and the adapter reads OpenSearch's response
shapes correctly. What it cannot prove: OpenSearch's own scoring, refresh timing, cluster behaviour.
"""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support import opensearch_engine as eng
from tests.support import opensearch_formats as fmt


class FakeOpenSearch:
    def __init__(self) -> None:
        self.indices: dict[str, eng.Index] = {}
        self.templates: dict[str, dict[str, Any]] = {}
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.policies: dict[str, tuple[dict[str, Any], int]] = {}  # id -> (body, seq_no)
        self.requests: list[tuple[str, str]] = []
        self.violations: list[str] = []
        self.fail_status: int | None = None  # every request answers this (a down or overloaded cluster)
        self.item_failures: dict[str, list[int]] = {}  # doc id -> statuses its next bulk items get
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> FakeOpenSearch:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("Content-Encoding") == "gzip" and body:
                    body = gzip.decompress(body)
                status, payload = fake.handle(self.command, self.path, body, dict(self.headers))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-opensearch").start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- dispatch ------------------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        url = urlsplit(raw_path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with self.lock:
            self.requests.append((method, url.path))
            if self.fail_status is not None:
                return self.fail_status, _error("unavailable", "injected failure", self.fail_status)
            try:
                return self._route(method, parts, params, body, headers)
            except eng.Rejected as exc:
                if exc.kind in ("parsing_exception", "x_content_parse_exception"):
                    self.violations.append(f"{method} {url.path}: {exc.reason}")
                return exc.status, _error(exc.kind, exc.reason, exc.status)

    def _bad(self, method: str, parts: list[str], problems: list[str]) -> tuple[int, Any]:
        where = f"{method} /{'/'.join(parts)}"
        self.violations += [f"{where}: {p}" for p in problems]
        return 400, _error("x_content_parse_exception", "; ".join(problems), 400)

    def _json(self, body: bytes) -> Any:
        try:
            return json.loads(body) if body else None
        except ValueError as exc:
            raise eng.Rejected("x_content_parse_exception", f"body is not JSON: {exc}") from None

    def _route(self, method: str, p: list[str], params: dict[str, str], body: bytes,
               headers: dict[str, str]) -> tuple[int, Any]:
        if not p:
            return 200, {"name": "loopback", "cluster_name": "cali-test",
                         "version": {"distribution": "opensearch", "number": "2.19.0"}}
        if p == ["_cluster", "health"]:
            return 200, {"cluster_name": "cali-test", "status": "green", "number_of_nodes": 1}
        if p[0] == "_ingest" and len(p) == 3 and method == "PUT":
            doc = self._json(body)
            problems = fmt.pipeline(doc)
            if problems:
                return self._bad(method, p, problems)
            self.pipelines[p[2]] = doc
            return 200, {"acknowledged": True}
        if p[0] == "_index_template" and len(p) == 2 and method == "PUT":
            doc = self._json(body)
            problems = fmt.index_template(doc)
            if problems:
                return self._bad(method, p, problems)
            self.templates[p[1]] = doc
            return 200, {"acknowledged": True}
        if p[:2] == ["_plugins", "_ism"] and len(p) == 4 and p[2] == "policies":
            return self._policy(method, p, params, body)
        if p[-1] == "_bulk" and method in ("POST", "PUT"):
            return self._bulk(p, params, body, headers)
        if p[-1] == "_search" and method in ("GET", "POST"):
            return self._search(p[0] if len(p) == 2 else "_all", params, self._json(body) or {}, method)
        if len(p) == 3 and p[1] in ("_doc", "_create"):
            return self._doc(method, p, params, body)
        if p[-1] == "_refresh":
            return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
        return self._bad(method, p, [f"no such endpoint {method} /{'/'.join(p)} in the OpenSearch API used here"])

    def _policy(self, method: str, p: list[str], params: dict[str, str], body: bytes) -> tuple[int, Any]:
        pid = p[3]
        if method == "GET":
            if pid not in self.policies:
                return 404, _error("status_exception", "Policy not found", 404)
            doc, seq = self.policies[pid]
            return 200, {"_id": pid, "_version": seq, "_seq_no": seq, "_primary_term": 1, "policy": doc["policy"]}
        if method != "PUT":
            return self._bad(method, p, ["ISM policies are read with GET and written with PUT"])
        doc = self._json(body)
        problems = fmt.ism_policy(doc)
        if problems:
            return self._bad(method, p, problems)
        if pid in self.policies:
            _, seq = self.policies[pid]
            if "if_seq_no" not in params or "if_primary_term" not in params:
                return 409, _error("version_conflict_engine_exception",
                                   f"[{pid}]: version conflict, document already exists", 409)
            if int(params["if_seq_no"]) != seq or int(params["if_primary_term"]) != 1:
                return 409, _error("version_conflict_engine_exception", f"[{pid}]: version conflict", 409)
        seq = self.policies.get(pid, ({}, 0))[1] + 1
        self.policies[pid] = (doc, seq)
        return (200 if seq > 1 else 201), {"_id": pid, "_version": seq, "_primary_term": 1, "_seq_no": seq,
                                           "policy": doc}

    def index(self, name: str) -> eng.Index:
        ix = self.indices.get(name)
        if ix is None:
            import fnmatch

            matching = [t for t in self.templates.values()
                        if any(fnmatch.fnmatchcase(name, pat) for pat in t["index_patterns"])]
            best = max(matching, key=lambda t: t.get("priority", 0), default={})
            tpl = json.loads(json.dumps(best.get("template") or {}))
            settings = tpl.get("settings") or {}
            ix = eng.Index(name, tpl.get("mappings") or {}, settings,
                           eng.build_analyzers(settings.get("analysis") or {}))
            self.indices[name] = ix
        return ix

    def _ingest(self, ix: eng.Index, doc: dict[str, Any], pipeline: str | None) -> dict[str, Any]:
        name = pipeline or (ix.settings.get("index") or {}).get("default_pipeline")
        if name and name != "_none":
            if name not in self.pipelines:
                raise eng.Rejected("illegal_argument_exception", f"pipeline with id [{name}] does not exist")
            doc = eng.run_pipeline(self.pipelines[name]["processors"], dict(doc))
        return doc

    def _bulk(self, p: list[str], params: dict[str, str], body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        problems, ops = fmt.bulk(body, p[0] if len(p) == 2 else None)
        if not ctype.startswith(("application/json", "application/x-ndjson")):
            problems.append(f"bulk Content-Type {ctype!r}: application/x-ndjson or application/json")
        if problems:
            return self._bad("POST", p, problems)
        items = []
        for action, meta, source in ops:
            name = meta.get("_index") or p[0]
            doc_id = str(meta.get("_id"))
            fails = self.item_failures.get(doc_id)
            if fails:
                status = fails.pop(0)
                items.append({action: {"_index": name, "_id": doc_id, "status": status, "error": {
                    "type": "es_rejected_execution_exception", "reason": "injected: write queue full"}}})
                continue
            ix = self.index(name)
            try:
                if action == "delete":
                    found = ix.docs.pop(doc_id, None) is not None
                    items.append({action: {"_index": name, "_id": doc_id, "result": "deleted" if found else
                                           "not_found", "status": 200 if found else 404}})
                    continue
                if action == "create" and doc_id in ix.docs:
                    raise eng.Rejected("version_conflict_engine_exception",
                                       f"[{doc_id}]: version conflict, document already exists", 409)
                doc = self._ingest(ix, source, meta.get("pipeline"))
                result, seq, version = ix.put(doc_id, doc)
                items.append({action: {"_index": name, "_id": doc_id, "_version": version, "result": result,
                                       "_shards": {"total": 1, "successful": 1, "failed": 0}, "_seq_no": seq,
                                       "_primary_term": 1, "status": 201 if result == "created" else 200}})
            except eng.Rejected as exc:
                items.append({action: {"_index": name, "_id": doc_id, "status": exc.status,
                                       "error": {"type": exc.kind, "reason": exc.reason}}})
        errors = any(next(iter(i.values()))["status"] >= 300 for i in items)
        return 200, {"took": 1, "errors": errors, "items": items}

    def _doc(self, method: str, p: list[str], params: dict[str, str], body: bytes) -> tuple[int, Any]:
        name, kind, doc_id = p
        if method == "GET" and kind == "_doc":
            ix = self.indices.get(name)
            if ix is None or doc_id not in ix.docs:
                return 404, {"_index": name, "_id": doc_id, "found": False}
            seq, version, term = ix.meta[doc_id]
            return 200, {"_index": name, "_id": doc_id, "_version": version, "_seq_no": seq, "_primary_term": term,
                         "found": True, "_source": ix.docs[doc_id]}
        if method not in ("PUT", "POST"):
            return self._bad(method, p, [f"{method} on a document is not used here"])
        doc = self._json(body)
        if not isinstance(doc, dict):
            return self._bad(method, p, ["a document must be a JSON object"])
        ix = self.index(name)
        exists = doc_id in ix.docs
        if (kind == "_create" or params.get("op_type") == "create") and exists:
            return 409, _error("version_conflict_engine_exception",
                               f"[{doc_id}]: version conflict, document already exists", 409)
        if "if_seq_no" in params or "if_primary_term" in params:
            if "if_seq_no" not in params or "if_primary_term" not in params:
                return self._bad(method, p, ["if_seq_no and if_primary_term go together"])
            current = ix.meta.get(doc_id)
            wanted = (int(params["if_seq_no"]), int(params["if_primary_term"]))
            if current is None or wanted != (current[0], current[2]):
                return 409, _error("version_conflict_engine_exception", f"[{doc_id}]: version conflict, required "
                                   f"seqNo [{params['if_seq_no']}]", 409)
        result, seq, version = ix.put(doc_id, self._ingest(ix, doc, params.get("pipeline")))
        return (201 if result == "created" else 200), {"_index": name, "_id": doc_id, "_version": version,
                                                        "result": result, "_seq_no": seq, "_primary_term": 1}

    def _search(self, target: str, params: dict[str, str], body: dict[str, Any], method: str) -> tuple[int, Any]:
        problems = fmt.search(body)
        if problems:
            return self._bad(method, [target, "_search"], problems)
        indices = eng.target_indices(self.indices, "*" if target == "_all" else target)
        if not indices and "*" not in target and params.get("ignore_unavailable") != "true":
            return 404, _error("index_not_found_exception", f"no such index [{target}]", 404)
        pairs = [(ix, d_id, doc) for ix in indices for d_id, doc in ix.docs.items()
                 if "query" not in body or eng.matches(ix, doc, body["query"])]
        sort = body.get("sort") or []
        hits = []
        for ix, d_id, doc in pairs:
            hits.append({"_index": ix.name, "_id": d_id, "_score": None if sort else 1.0, "_source": doc,
                         "sort": eng.sort_values(ix, doc, sort)})
        for i in reversed(range(len(sort))):
            desc = eng.order_of(sort[i]) == "desc"
            present = [h for h in hits if h["sort"][i] is not None]
            missing = [h for h in hits if h["sort"][i] is None]  # missing values sort last either way
            hits = sorted(present, key=lambda h, i=i: h["sort"][i], reverse=desc) + missing
        total = len(hits)  # the query's matches: search_after pages through them, it does not filter them
        if "search_after" in body:
            after = body["search_after"]
            hits = [h for h in hits if _after(h["sort"], after, [eng.order_of(s) for s in sort])]
        cap = body.get("track_total_hits", 10_000)
        cap = 10**12 if cap is True else int(cap) if cap is not False else 0
        start = int(body.get("from", 0))
        page = hits[start:start + int(body.get("size", 10))]
        if not sort:
            for h in page:
                h.pop("sort")
        out: dict[str, Any] = {"took": 1, "timed_out": False,
                               "_shards": {"total": len(indices), "successful": len(indices), "failed": 0},
                               "hits": {"total": {"value": min(total, cap), "relation": "eq" if total <= cap else
                                                  "gte"}, "max_score": None, "hits": page}}
        aggs = body.get("aggs") or body.get("aggregations")
        if aggs:
            members = [(ix, doc) for ix, _, doc in pairs]
            out["aggregations"] = {name: eng.aggregate(members, name, a) for name, a in aggs.items()}
        return 200, out


def _after(values: list[Any], after: list[Any], orders: list[str]) -> bool:
    for v, a, order in zip(values, after, orders, strict=False):
        if v == a:
            continue
        if v is None:
            return True
        return (v < a) if order == "desc" else (v > a)
    return False


def _error(kind: str, reason: str, status: int) -> dict[str, Any]:
    return {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
            "status": status}
