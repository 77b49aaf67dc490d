"""The OpenAI embeddings adapter against a loopback server speaking the embeddings wire format."""

from __future__ import annotations

import math

import pytest
from pydantic import SecretStr

from cali.embed.openai_embed import OpenAIEmbedConfig, OpenAIEmbedder, OpenAIEmbedError
from tests.support.fake_openai import FakeOpenAI

pytestmark = pytest.mark.integration


def test_embeds_in_batches_normalised_and_in_order():
    with FakeOpenAI(embedding_dim=16) as fake:
        emb = OpenAIEmbedder(OpenAIEmbedConfig(base_url=fake.base_url, model="fake-embed", dim=16, batch_size=2,
                                               api_key=SecretStr("sk-test-not-a-real-key")))
        texts = ["connection refused", "disk full", "", "pool exhausted", "dns"]
        vecs = emb.embed(texts)
        again = emb.embed(["disk full"])
        posts = [r for r in fake.requests if r["path"].endswith("/embeddings")]
        assert emb.healthcheck().ok
    assert len(vecs) == 5 and all(len(v) == 16 for v in vecs)
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-6) for v in vecs)
    assert vecs[1] == again[0]  # order kept across batches
    assert len(posts) == 4  # three batches of at most 2, then the single text
    assert all(r["headers"].get("Authorization", r["headers"].get("authorization")) == "Bearer sk-test-not-a-real-key"
               for r in posts)


def test_a_dimension_mismatch_is_a_clear_error():
    with FakeOpenAI(embedding_dim=8) as fake:
        emb = OpenAIEmbedder(OpenAIEmbedConfig(base_url=fake.base_url, model="fake-embed", dim=16, max_retries=0))
        with pytest.raises(OpenAIEmbedError, match="returned dim 8, configured dim is 16"):
            emb.embed(["x"])


def test_an_unreachable_server_fails_the_healthcheck_without_raising():
    with FakeOpenAI() as fake:
        url = fake.base_url
    emb = OpenAIEmbedder(OpenAIEmbedConfig(base_url=url, model="fake-embed", dim=8, max_retries=0, timeout_s=2))
    health = emb.healthcheck()
    assert not health.ok and "embeddings.create failed" in health.detail
