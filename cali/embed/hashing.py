"""Deterministic feature-hashing embedder (words and character trigrams): no model, for unit tests."""

from __future__ import annotations

import hashlib
import re

from cali.core.ports import Health
from cali.embed import l2_normalise

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*|\d+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _bucket(feature: str, dim: int) -> tuple[int, float]:
    # blake2b, not hash(): Python salts str hashes per process, and vectors must be stable on disk.
    h = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")
    return h % dim, (1.0 if (h >> 63) & 1 else -1.0)


def features(text: str) -> list[str]:
    """Lower-cased words (camelCase split too) and the character trigrams of each word."""
    out: list[str] = []
    for raw in _WORD.findall(text):
        parts = [raw.lower()] + [p.lower() for p in _CAMEL.split(raw) if p and p != raw]
        for word in parts:
            out.append("w:" + word)
            padded = f"^{word}$"
            out.extend("c:" + padded[i:i + 3] for i in range(len(padded) - 2))
    return out


class HashingEmbedder:
    """Signed feature hashing into `dim` buckets; same text, same vector, on every machine."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.id = f"hashing-v1-{dim}"

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            vec = [0.0] * self.dim
            for feat in features(text):
                i, sign = _bucket(feat, self.dim)
                vec[i] += sign * (2.0 if feat.startswith("w:") else 1.0)
            vectors.append(l2_normalise(vec))
        return vectors

    def healthcheck(self) -> Health:
        return Health(name="embedder:hashing", ok=True, detail=f"feature hashing, dim {self.dim}")
