"""The hashing embedder: deterministic, normalised, and similar texts land close."""

from __future__ import annotations

import math

from cali.embed import Embedder
from cali.embed.hashing import HashingEmbedder, features


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_same_text_same_vector_across_instances() -> None:
    a = HashingEmbedder().embed(["java.net.ConnectException: Connection refused"])[0]
    b = HashingEmbedder().embed(["java.net.ConnectException: Connection refused"])[0]
    assert a == b


def test_vectors_are_l2_normalised_and_sized() -> None:
    emb = HashingEmbedder(dim=256)
    for vec in emb.embed(["Too many open files", "x", "HikariPool-1 - Connection is not available"]):
        assert len(vec) == 256
        assert math.isclose(math.sqrt(sum(v * v for v in vec)), 1.0, rel_tol=1e-9)


def test_empty_text_is_a_zero_vector_not_an_error() -> None:
    assert HashingEmbedder().embed([""])[0] == [0.0] * 256


def test_related_texts_are_closer_than_unrelated() -> None:
    q, near, far = HashingEmbedder().embed(["Connection refused by upstream orders",
                                            "connection refused (ECONNREFUSED)", "division by zero in tax calculation"])
    assert _cos(q, near) > _cos(q, far)


def test_camel_case_words_are_split_into_features() -> None:
    feats = features("NullPointerException")
    assert {"w:nullpointerexception", "w:null", "w:pointer", "w:exception"} <= set(feats)


def test_satisfies_the_port() -> None:
    emb = HashingEmbedder()
    assert isinstance(emb, Embedder)
    assert emb.id == "hashing-v1-256" and emb.healthcheck().ok
