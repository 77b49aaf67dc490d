"""Milvus vector store (Milvus Lite file or server): dense + BM25 full-text hybrid search of incidents."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, date
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from cali.analysis.kb import DaySeen, Incident, document_text
from cali.analysis.model import Hit
from cali.analysis.retrieval import rank_by_source
from cali.core.ports import Health
from cali.embed import Embedder

DEFAULT_URI = "./data/kb.db"
DEFAULT_COLLECTION = "cali_kb"
_PROP_EMBEDDER = "cali.embedder_id"
_PROP_DIM = "cali.embedder_dim"
_MAX_TEXT = 8000
_SERVER_SCHEMES = ("http://", "https://", "tcp://", "grpc://", "unix:")
_MAX_SEEN_JSON = 65_535
_MAX_DAYS = 400
# Fields added for learned entries (the daily batch); a collection created before them is migrated.
_LEARNED_FIELDS = ("status", "first_day", "days", "seen")
_HIT_FIELDS = ["id", "category", "title", "source", "root_cause", "remediation", "fingerprint", "seen"]
log = logging.getLogger(__name__)


class VectorStoreError(RuntimeError):
    """The store cannot be used as asked; the message says what to do."""


class EmbedderMismatchError(VectorStoreError):
    pass


class StoreLockedError(VectorStoreError):
    pass


def is_local(uri: str) -> bool:
    return not uri.startswith(_SERVER_SCHEMES)


class FileLock:
    """An exclusive flock on `<db>.lock` holding the owner's pid: Milvus Lite serves a file to one process."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreLockedError(
                f"Milvus Lite file {self.path.with_suffix('')} is already open by pid {owner} (lock {self.path}); "
                "a Milvus Lite file has one owner: stop that process, or use a Milvus server URI "
                "(http://host:19530) to share the knowledge base") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class MilvusStore:
    """Incidents in one Milvus collection: a dense vector and a BM25 sparse vector per incident.

    Hybrid ranking is a normalised weighted sum, computed here over the union of both candidate lists:
    fused = cosine + lexical_weight * bm25 / max(bm25 of this query). Cosine is already 0..1 and
    comparable across queries; BM25 is not, so it is scaled by the query's best match. Unlike reciprocal
    rank fusion, this keeps how close the best match is, which the abstention needs (docs/analysis.md).
    """

    def __init__(self, embedder: Embedder, uri: str = DEFAULT_URI, collection: str = DEFAULT_COLLECTION,
                 token: SecretStr | None = None, lexical_weight: float = 1.0, candidates: int = 50,
                 connect_timeout_s: float = 5.0) -> None:
        self.embedder = embedder
        self.connect_timeout_s = connect_timeout_s
        self.uri = uri
        self.collection = collection
        self.token = token
        self.lexical_weight = lexical_weight
        self.candidates = candidates
        self._client: Any = None
        self._lock: FileLock | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------
    def open(self, rebuild: bool = False) -> MilvusStore:
        """MilvusClient(uri), after the file lock for Milvus Lite; creates or checks the collection."""
        if self._client is not None:
            return self
        from pymilvus import MilvusClient

        if is_local(self.uri):
            self._lock = FileLock(Path(self.uri).resolve())
            self._lock.acquire()
        try:
            kwargs: dict[str, Any] = {"uri": str(Path(self.uri).resolve()) if is_local(self.uri) else self.uri}
            if self.token is not None:
                kwargs["token"] = self.token.get_secret_value()
            if not is_local(self.uri):
                # pymilvus waits 10 s for a server that does not answer; Milvus Lite starts a local
                # process that can take longer on a busy machine, so it keeps the default.
                kwargs["timeout"] = self.connect_timeout_s
            self._client = MilvusClient(**kwargs)
            self._ensure_collection(rebuild)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
            if is_local(self.uri):
                # pymilvus leaves the Milvus Lite server of the file running until the process exits,
                # holding the data directory's lock: no other process could open the KB after close().
                with contextlib.suppress(Exception):
                    from milvus_lite.server_manager import server_manager_instance

                    server_manager_instance.release_server(str(Path(self.uri).resolve()))
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> MilvusStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def client(self) -> Any:
        if self._client is None:
            self.open()
        return self._client

    # -- schema ------------------------------------------------------------------------------------------
    def _ensure_collection(self, rebuild: bool) -> None:
        c = self._client
        if c.has_collection(self.collection):
            if rebuild:
                c.drop_collection(self.collection)
            else:
                self._check_embedder()
                c.load_collection(self.collection)
                self._migrate()
                return
        self._create_collection()

    def _migrate(self) -> None:
        """Adds the learned-entry fields to a collection made before them: rows are read, the collection is
        made again with the current schema and the rows are written back with empty learned fields.
        (Milvus Lite cannot add a field in place; the knowledge base is a few thousand rows.)"""
        fields = {f["name"] for f in self._client.describe_collection(self.collection).get("fields", [])}
        if all(f in fields for f in _LEARNED_FIELDS):
            return
        rows = [r for batch in self._all_rows() for r in batch]
        log.warning("collection %s at %s predates learned entries: migrating its %d rows", self.collection,
                    self.uri, len(rows))
        self._client.drop_collection(self.collection)
        self._create_collection()
        for start in range(0, len(rows), 256):
            chunk = [{k: v for k, v in r.items() if k != "sparse"} | {"status": "", "first_day": 0, "days": [],
                                                                      "seen": ""} for r in rows[start:start + 256]]
            self._client.upsert(self.collection, chunk)
        self._client.flush(self.collection)

    def _all_rows(self) -> Any:
        it = self._client.query_iterator(self.collection, batch_size=256, filter="",
                                         output_fields=["*"])
        try:
            while batch := it.next():
                yield batch
        finally:
            it.close()

    def _check_embedder(self) -> None:
        props = self._client.describe_collection(self.collection).get("properties", {}) or {}
        built_id, built_dim = props.get(_PROP_EMBEDDER), props.get(_PROP_DIM)
        if built_id != self.embedder.id or str(built_dim) != str(self.embedder.dim):
            raise EmbedderMismatchError(
                f"collection {self.collection} at {self.uri} was built with embedder {built_id} dim {built_dim}, "
                f"not {self.embedder.id} dim {self.embedder.dim}; vectors of two models cannot be compared: "
                "run cali kb load --rebuild")

    def _create_collection(self) -> None:
        from pymilvus import DataType, Function, FunctionType

        c = self._client
        s = c.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=128)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=self.embedder.dim)
        s.add_field("text", DataType.VARCHAR, max_length=_MAX_TEXT * 2, enable_analyzer=True,
                    analyzer_params={"tokenizer": "standard", "filter": ["lowercase"]})
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_field("category", DataType.VARCHAR, max_length=64)
        s.add_field("title", DataType.VARCHAR, max_length=1024)
        s.add_field("source", DataType.VARCHAR, max_length=16)
        s.add_field("fingerprint", DataType.VARCHAR, max_length=128)
        s.add_field("created_at", DataType.INT64)
        s.add_field("root_cause", DataType.VARCHAR, max_length=8192)
        s.add_field("remediation", DataType.VARCHAR, max_length=16384)  # JSON list of strings
        # Learned entries: status "unresolved", the first UTC day seen (days since 1970, 0 otherwise: a
        # learning run leaves out what it wrote itself), the days seen, and per-day counts as JSON.
        s.add_field("status", DataType.VARCHAR, max_length=16)
        s.add_field("first_day", DataType.INT64)
        s.add_field("days", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=_MAX_DAYS, max_length=10)
        s.add_field("seen", DataType.VARCHAR, max_length=_MAX_SEEN_JSON)
        s.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                input_field_names=["text"], output_field_names=["sparse"]))
        ip = c.prepare_index_params()
        ip.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="COSINE")
        ip.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        c.create_collection(self.collection, schema=s, index_params=ip, consistency_level="Strong",
                            properties={_PROP_EMBEDDER: self.embedder.id, _PROP_DIM: str(self.embedder.dim)})

    # -- writes ------------------------------------------------------------------------------------------
    def upsert(self, incidents: Sequence[Incident], vectors: Sequence[Sequence[float]] | None = None,
               batch: int = 256) -> int:
        """Embeds each incident's document text (unless `vectors` are given) and upserts (MilvusClient.upsert)."""
        total = 0
        for start in range(0, len(incidents), batch):
            chunk = list(incidents[start:start + batch])
            texts = [document_text(i)[:_MAX_TEXT] for i in chunk]
            vecs = list(vectors[start:start + batch]) if vectors is not None else self.embedder.embed(texts)
            rows = [_row(i, t, v) for i, t, v in zip(chunk, texts, vecs, strict=True)]
            res = self.client.upsert(self.collection, rows)
            total += int(res.get("upsert_count", len(rows))) if isinstance(res, dict) else len(rows)
        # Sealed segments are searched through their indexes; growing ones by brute force. Measured at
        # 100k entries: hybrid search 5.8 s before this flush, 0.65 s after.
        if total:
            self.client.flush(self.collection)
        return total

    def delete(self, ids: Sequence[str]) -> None:
        """MilvusClient.delete by primary key."""
        if ids:
            self.client.delete(self.collection, ids=list(ids))
            self.client.flush(self.collection)

    # -- learned entries (the daily batch, cali.batch.learn) ---------------------------------------------
    def nearest(self, vector: Sequence[float], k: int = 5, learned_before: date | None = None) -> list[Hit]:
        """Dense search only (MilvusClient.search), cosine in `dense_score`; with `learned_before`, learned
        entries first seen on or after that day are left out (what a learning run of that day wrote)."""
        expr = f'source != "learned" or first_day < {epoch_day(learned_before)}' if learned_before else ""
        res = self.client.search(self.collection, data=[list(vector)], anns_field="vector", limit=k, filter=expr,
                                 output_fields=_HIT_FIELDS, search_params={"metric_type": "COSINE"})[0]
        return fuse(res, [], 0.0)

    def learned(self, ids: Sequence[str]) -> dict[str, tuple[dict[str, DaySeen], int]]:
        """Per-day stats of the learned entries among `ids` (MilvusClient.get)."""
        if not ids:
            return {}
        rows = self.client.get(self.collection, ids=list(ids), output_fields=["id", "source", "seen"])
        return {r["id"]: parse_seen(r.get("seen")) for r in rows if r.get("source") == "learned"}

    def learned_on(self, day: str) -> dict[str, tuple[dict[str, DaySeen], int]]:
        """Learned entries whose per-day stats hold `day` (MilvusClient.query on array_contains)."""
        rows = self.client.query(self.collection, filter=f'array_contains(days, "{_day(day)}")',
                                 output_fields=["id", "seen"])
        return {r["id"]: parse_seen(r.get("seen")) for r in rows}

    def set_seen(self, updates: Mapping[str, tuple[dict[str, DaySeen], int]]) -> int:
        """Rewrites the per-day stats of existing entries, keeping their text and vector (get, then upsert)."""
        if not updates:
            return 0
        rows = self.client.get(self.collection, ids=list(updates), output_fields=["*"])
        out = []
        for row in rows:
            seen, before = updates[row["id"]]
            row = {k: v for k, v in row.items() if k != "sparse"}
            out.append(row | _learned_fields(seen, before, row["created_at"]))
        if out:
            self.client.upsert(self.collection, out)
            self.client.flush(self.collection)
        return len(out)

    def count(self, timeout: float | None = None) -> int:
        res = self.client.query(self.collection, filter="", output_fields=["count(*)"], timeout=timeout)
        return int(res[0]["count(*)"]) if res else 0

    # -- reads -------------------------------------------------------------------------------------------
    def search(self, text: str, k: int = 10, vector: Sequence[float] | None = None) -> list[Hit]:
        """Dense (COSINE) and BM25 searches (MilvusClient.search on both fields), fused; best first, one per id,
        curated and resolved entries ahead of learned ones of similar relevance (retrieval.rank_by_source).

        `vector` is the query's embedding when the caller already has it (Serve batches embeddings).
        """
        n = max(k, self.candidates)
        fields = _HIT_FIELDS
        qvec = list(vector) if vector is not None else self.embedder.embed([text])[0]
        if len(qvec) != self.embedder.dim:
            raise EmbedderMismatchError(f"query vector has dim {len(qvec)}, the collection {self.dim_note()}")
        dense = self.client.search(self.collection, data=[qvec], anns_field="vector", limit=n,
                                   output_fields=fields, search_params={"metric_type": "COSINE"})[0]
        lexical = []
        if self.lexical_weight > 0 and text.strip():
            lexical = self.client.search(self.collection, data=[text[:_MAX_TEXT]], anns_field="sparse", limit=n,
                                         output_fields=fields, search_params={"metric_type": "BM25"})[0]
        return rank_by_source(fuse(dense, lexical, self.lexical_weight))[:k]

    def dim_note(self) -> str:
        return f"{self.collection} holds {self.embedder.id} vectors of dim {self.embedder.dim}"

    def healthcheck(self) -> Health:
        name = f"vector:milvus:{self.collection}"
        try:
            n = self.count(timeout=self.connect_timeout_s)
        except VectorStoreError as exc:
            return Health(name=name, ok=False, detail=str(exc))
        except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
            return Health(name=name, ok=False, detail=f"cannot query {self.uri}: {type(exc).__name__}: {exc}")
        if n == 0:
            return Health(name=name, ok=False, detail=f"{self.uri} has no incidents: run cali kb load")
        return Health(name=name, ok=True, detail=f"{n} incidents in {self.uri} (embedder {self.embedder.id})")


def _row(inc: Incident, text: str, vec: Sequence[float]) -> dict[str, Any]:
    created = int(inc.created_at.timestamp()) if inc.created_at else 0
    return {"id": inc.id, "vector": list(vec), "text": text, "category": inc.category, "title": inc.title[:1000],
            "source": inc.source, "fingerprint": inc.fingerprint[:128], "created_at": created,
            "root_cause": inc.root_cause[:8000], "remediation": json.dumps(inc.remediation)[:16000],
            "status": inc.status or ""} | _learned_fields(inc.seen, inc.seen_before, created)


def epoch_day(day: date | str) -> int:
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return (d - date(1970, 1, 1)).days


def _day(day: str) -> str:
    return date.fromisoformat(day).isoformat()  # refuses anything but YYYY-MM-DD (it goes into a filter)


def _learned_fields(seen: Mapping[str, DaySeen], before: int, created_at: int) -> dict[str, Any]:
    if not seen:
        return {"first_day": 0, "days": [], "seen": ""}
    days = sorted(seen)
    doc = json.dumps({"before": before, "days": {d: seen[d].model_dump(mode="json") for d in days}})
    if len(doc) > _MAX_SEEN_JSON:
        raise VectorStoreError(f"per-day stats of a learned entry are {len(doc)} bytes, over {_MAX_SEEN_JSON}: "
                               "lower cali.analysis.kb.MAX_SEEN_DAYS")
    first = min(s.first for s in seen.values())
    return {"first_day": epoch_day(days[0]), "days": days[-_MAX_DAYS:], "seen": doc,
            "created_at": created_at or int(first.timestamp())}


def parse_seen(raw: str | None) -> tuple[dict[str, DaySeen], int]:
    if not raw:
        return {}, 0
    doc = json.loads(raw)
    return {d: DaySeen.model_validate(v) for d, v in doc.get("days", {}).items()}, int(doc.get("before", 0))


def _seen_summary(raw: str | None) -> dict[str, Any]:
    seen, before = parse_seen(raw)
    if not seen:
        return {}
    return {"occurrences": before + sum(s.count for s in seen.values()),
            "first_seen": min(s.first for s in seen.values()).astimezone(UTC),
            "last_seen": max(s.last for s in seen.values()).astimezone(UTC),
            "services": sorted({x for s in seen.values() for x in s.services})}


def fuse(dense: list[dict[str, Any]], lexical: list[dict[str, Any]], lexical_weight: float) -> list[Hit]:
    """Normalised weighted sum over the union of both candidate lists (see MilvusStore)."""
    # Milvus Lite reports BM25 as a negated distance, a server as a positive score: the magnitude is the score.
    lex = {h["id"]: abs(float(h["distance"])) for h in lexical}
    top_lex = max(lex.values(), default=0.0) or 1.0
    cos = {h["id"]: float(h["distance"]) for h in dense}
    floor = min(cos.values(), default=0.0)  # not in the dense candidates: at most the last candidate's cosine
    entities = {h["id"]: h["entity"] for h in lexical} | {h["id"]: h["entity"] for h in dense}
    hits = []
    for hid, ent in entities.items():
        d = cos.get(hid, floor)
        lx = lex.get(hid, 0.0)
        hits.append(Hit(id=hid, category=ent["category"], title=ent["title"], score=d + lexical_weight * lx / top_lex,
                        dense_score=d, lexical_score=lx, root_cause=ent.get("root_cause", ""),
                        remediation=json.loads(ent.get("remediation") or "[]"), source=ent.get("source", "curated"),
                        fingerprint=ent.get("fingerprint") or "", **_seen_summary(ent.get("seen"))))
    return sorted(hits, key=lambda h: h.score, reverse=True)
