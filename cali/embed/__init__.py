"""The Embedder port: texts in, L2-normalised vectors out, one adapter module per model provider."""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

from cali.core.ports import Health


@runtime_checkable
class Embedder(Protocol):
    """`id` names model and settings (stored with a collection so vectors of two models never mix)."""

    id: str
    dim: int

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One L2-normalised vector of length `dim` per text, in order."""
        ...

    def healthcheck(self) -> Health: ...


def l2_normalise(vec: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vec))
    if norm == 0.0:
        return vec
    return [x / norm for x in vec]


__all__ = ["Embedder", "l2_normalise"]
