"""Milvus Lite and learned entries: the learning store's calls, and a collection made before them migrated."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from cali.analysis.kb import DaySeen, Incident, learned_incident
from cali.embed.hashing import HashingEmbedder

pytestmark = pytest.mark.integration
T = datetime(2026, 11, 26, 9, tzinfo=UTC)
CURATED = Incident(id="inc-0001", title="Connection pool exhausted", category="db-pool",
                   symptoms=["HikariPool-1 - Connection is not available, request timed out after 30000ms"],
                   root_cause="pool too small", remediation=["raise maximumPoolSize"])


def learned(fp: str, day: str, text: str) -> Incident:
    return learned_incident(fingerprint=fp, title=f"orders-api ERROR: {text}", symptoms=[text], day=day,
                            seen=DaySeen(count=3, services=["orders-api"], first=T, last=T))


def test_learning_store_calls_on_milvus_lite(tmp_path):
    from cali.vector.milvus import MilvusStore

    emb = HashingEmbedder()
    with MilvusStore(emb, uri=str(tmp_path / "kb.db")) as store:
        store.upsert([CURATED, learned("aaaa", "2026-11-25", "disk quota exceeded on /var/data"),
                      learned("bbbb", "2026-11-26", "disk quota exceeded on /var/data")])
        vec = emb.embed(["orders-api ERROR: disk quota exceeded on /var/data\ndisk quota exceeded on /var/data"])[0]
        assert [h.id for h in store.nearest(vec, 3)][:2] in (["lrn-aaaa", "lrn-bbbb"], ["lrn-bbbb", "lrn-aaaa"])
        # a run of the 26th does not see what the 26th itself learned
        ids = [h.id for h in store.nearest(vec, 3, learned_before=date(2026, 11, 26))]
        assert "lrn-bbbb" not in ids and ids[0] == "lrn-aaaa"
        assert set(store.learned(["lrn-aaaa", "inc-0001", "lrn-zzzz"])) == {"lrn-aaaa"}
        assert set(store.learned_on("2026-11-26")) == {"lrn-bbbb"}
        seen, before = store.learned(["lrn-aaaa"])["lrn-aaaa"]
        seen["2026-11-26"] = DaySeen(count=7, services=["web-bff"], first=T, last=T.replace(hour=20))
        store.set_seen({"lrn-aaaa": (seen, before)})
        hit = next(h for h in store.search("disk quota exceeded on /var/data", 5) if h.id == "lrn-aaaa")
        assert hit.occurrences == 10 and hit.services == ["orders-api", "web-bff"] and hit.source == "learned"
        assert set(store.learned_on("2026-11-26")) == {"lrn-aaaa", "lrn-bbbb"}
        store.delete(["lrn-bbbb"])
        assert store.count() == 2


def test_a_collection_made_before_learned_entries_is_migrated(tmp_path):
    from pymilvus import DataType, Function, FunctionType, MilvusClient

    from cali.vector.milvus import MilvusStore

    emb = HashingEmbedder()
    uri = str(tmp_path / "old.db")
    c = MilvusClient(uri)
    s = c.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=128)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=emb.dim)
    s.add_field("text", DataType.VARCHAR, max_length=16000, enable_analyzer=True,
                analyzer_params={"tokenizer": "standard", "filter": ["lowercase"]})
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    for name, n in (("category", 64), ("title", 1024), ("source", 16), ("fingerprint", 128), ("root_cause", 8192),
                    ("remediation", 16384)):
        s.add_field(name, DataType.VARCHAR, max_length=n)
    s.add_field("created_at", DataType.INT64)
    s.add_function(Function(name="text_bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                            output_field_names=["sparse"]))
    ip = c.prepare_index_params()
    ip.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="COSINE")
    ip.add_index(field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    c.create_collection("cali_kb", schema=s, index_params=ip, consistency_level="Strong",
                        properties={"cali.embedder_id": emb.id, "cali.embedder_dim": str(emb.dim)})
    text = "Connection pool exhausted\nHikariPool-1 - Connection is not available"
    c.upsert("cali_kb", [{"id": "res-1-abc", "vector": emb.embed([text])[0], "text": text, "category": "db-pool",
                          "title": "Connection pool exhausted", "source": "resolved", "fingerprint": "abc",
                          "root_cause": "pool", "remediation": '["raise it"]', "created_at": 5}])
    c.close()
    with MilvusStore(emb, uri=uri) as store:
        assert store.count() == 1
        (hit,) = store.search("HikariPool-1 - Connection is not available", 1)
        assert (hit.id, hit.source, hit.fingerprint, hit.remediation) == ("res-1-abc", "resolved", "abc", ["raise it"])
        store.upsert([learned("cccc", "2026-11-26", "pool timeout in checkout")])
        assert set(store.learned_on("2026-11-26")) == {"lrn-cccc"}
