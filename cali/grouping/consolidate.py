"""Consolidation: which templates of one length are one event, judged by the diversity of their values."""

from __future__ import annotations

from collections.abc import Sequence

from cali.grouping.tokens import generalize_unit, has_placeholder, has_wording


def partition(rows: Sequence[Sequence[str]], min_diversity: int, min_constant: float) -> list[list[int]]:
    """Split `rows` (templates of one length) into clusters, each one event; returns row indices.

    A position where the rows differ holds a variable when the differing parts of its values
    include a placeholder (a masked or learned variable) or take at least `min_diversity`
    distinct forms; otherwise its few values name different events and the rows are split by
    it, fewest values first. A cluster must also keep wording in at least `min_constant` of the
    positions that have any, else it is split by its least diverse position: "<*> <num>" says
    nothing.
    """
    clusters: list[list[int]] = []
    todo = [list(range(len(rows)))]
    while todo:
        node = todo.pop()
        if len(node) == 1:
            clusters.append(node)
            continue
        split = _split_position(rows, node, min_diversity, min_constant)
        if split is None:
            clusters.append(node)
            continue
        parts: dict[str, list[int]] = {}
        for i in node:
            parts.setdefault(rows[i][split], []).append(i)
        todo.extend(parts.values())
    return clusters


def _split_position(rows: Sequence[Sequence[str]], node: list[int], min_diversity: int,
                    min_constant: float) -> int | None:
    """The position to split `node` by, or None when its rows are one event."""
    constant: tuple[int, int] | None = None  # (distinct values, position) of the best split
    fallback: tuple[int, int] | None = None
    shown = kept = 0  # positions that show wording or a value, and those the template keeps
    for p in range(len(rows[node[0]])):
        values = sorted({rows[i][p] for i in node})
        if not any(has_wording(v) or has_placeholder(v) for v in values):
            if len(values) > 1:
                constant = min(constant or (len(values), p), (len(values), p))  # another shape
            continue
        shown += 1
        if len(values) == 1:
            kept += 1
            continue
        template, parts = generalize_unit(values)
        kept += has_wording(template)
        key = (len(values), p)
        if any(has_placeholder(part) for part in parts) or len(set(parts)) >= min_diversity:
            fallback = min(fallback or key, key)
        else:
            constant = min(constant or key, key)
    if constant is not None:
        return constant[1]
    if kept < min_constant * shown:
        return fallback[1] if fallback is not None else None
    return None


def generalize(rows: Sequence[Sequence[str]]) -> list[str]:
    """One template for rows of one event: each position where they differ gets a wildcard."""
    out = list(rows[0])
    for p, token in enumerate(out):
        values = sorted({r[p] for r in rows})
        if len(values) > 1:
            out[p] = generalize_unit(values)[0]
    return out
