"""Milvus Lite for real, in a temp dir: load, hybrid search, embedder guard, one owner, resolved upserts."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest

from cali.analysis.kb import load_incidents, resolved_incident
from cali.embed.hashing import HashingEmbedder
from tests.support import needs

pytestmark = pytest.mark.integration
needs.module("pymilvus", "pymilvus/milvus-lite are not installed")
from cali.vector.milvus import EmbedderMismatchError, MilvusStore, StoreLockedError  # noqa: E402

KB_DIR = Path(__file__).resolve().parents[2] / "knowledge" / "incidents"


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("milvus") / "kb.db"
    with MilvusStore(HashingEmbedder(), uri=str(path)).open(rebuild=True) as store:
        store.upsert(load_incidents(KB_DIR))
    return path


@pytest.fixture
def store(db: Path) -> Iterator[MilvusStore]:
    s = MilvusStore(HashingEmbedder(), uri=str(db)).open()
    yield s
    s.close()


def test_load_and_search_returns_scored_hits(store: MilvusStore) -> None:
    assert store.count() == len(load_incidents(KB_DIR))
    hits = store.search("java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, "
                        "request timed out after 30000ms.", k=5)
    assert len(hits) == 5
    assert hits[0].category == "db-pool-exhausted"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].dense_score is not None and 0 < hits[0].dense_score <= 1.0001
    assert hits[0].lexical_score and hits[0].lexical_score > 0  # Milvus full-text BM25 contributed
    assert hits[0].root_cause and hits[0].remediation


def test_embedder_of_another_dimension_is_refused(store: MilvusStore, db: Path) -> None:
    store.close()
    with pytest.raises(EmbedderMismatchError, match=r"built with embedder hashing-v1-256 dim 256.*--rebuild"):
        MilvusStore(HashingEmbedder(dim=128), uri=str(db)).open()


def _try_open(path: str, out: multiprocessing.Queue) -> None:
    try:
        MilvusStore(HashingEmbedder(), uri=path).open()
        out.put("opened")
    except StoreLockedError as exc:
        out.put(str(exc))


def _add_one(path: str, out: multiprocessing.Queue) -> None:
    try:
        with MilvusStore(HashingEmbedder(), uri=path) as s:
            s.upsert([resolved_incident(title="handed over", category="handover", root_cause="r",
                                        remediation=["x"], symptoms=["HandoverMarker kangaroo-walrus"],
                                        fingerprint="fp-handover")])
            out.put(s.count())
    except Exception as exc:
        out.put(f"{type(exc).__name__}: {exc}")


def test_after_close_another_process_opens_and_writes(tmp_path: Path) -> None:
    """close() frees the file for good: pymilvus alone keeps its Milvus Lite server (and the data
    directory's lock) until the process exits."""
    path = str(tmp_path / "kb.db")
    with MilvusStore(HashingEmbedder(), uri=path) as s:
        s.upsert(load_incidents(KB_DIR)[:3])
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_add_one, args=(path, q))
    p.start()
    got = q.get(timeout=120)
    p.join(timeout=30)
    assert got == 4, got
    with MilvusStore(HashingEmbedder(), uri=path) as s:  # and this process, reopening, sees that write
        assert s.count() == 4
        assert s.search("HandoverMarker kangaroo-walrus", k=1)[0].category == "handover"


def test_second_opener_is_refused_naming_the_owner(store: MilvusStore, db: Path) -> None:
    with pytest.raises(StoreLockedError, match="already open by pid"):
        MilvusStore(HashingEmbedder(), uri=str(db)).open()
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_try_open, args=(str(db), q))
    p.start()
    msg = q.get(timeout=120)
    p.join(timeout=30)
    import os

    assert f"pid {os.getpid()}" in msg


def test_resolved_incident_is_found_by_search(store: MilvusStore) -> None:
    inc = resolved_incident(title="ledger-api: quarantine bucket lifecycle rule purged pending uploads",
                            category="object-storage-missing",
                            root_cause="A lifecycle rule deleted objects under quarantine/ after 1 day.",
                            remediation=["Exclude quarantine/ from the lifecycle rule"],
                            symptoms=["QuarantineObjectVanished: zebra-quokka upload gone from quarantine prefix"],
                            fingerprint="fp-zebra")
    before = store.count()
    store.upsert([inc])
    assert store.count() == before + 1
    hits = store.search("QuarantineObjectVanished zebra-quokka", k=3)
    assert hits[0].id == inc.id and hits[0].source == "resolved"
    store.upsert([inc])  # same id again: replaced, not duplicated
    assert store.count() == before + 1


def test_healthcheck_reports_the_count(store: MilvusStore) -> None:
    h = store.healthcheck()
    assert h.ok and "incidents" in h.detail
