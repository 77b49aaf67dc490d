"""Consolidation: which templates of one length are one event, judged by the diversity of their values."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from cali.grouping.tokens import generalize_unit, has_placeholder, has_wording, unit_frame


def partition(rows: Sequence[Sequence[str]], min_diversity: int, min_constant: float) -> list[list[int]]:
    """Split `rows` (templates of one length) into clusters, each one event; returns row indices.

    A position where the rows differ holds a variable when the differing parts of its values
    include a placeholder (a masked or learned variable) or take at least `min_diversity`
    distinct forms; otherwise its few values name different events and the rows are split by
    it, fewest values first. A cluster must also keep its wording in at least `min_constant` of
    the positions that have any, else it is split by its least diverse variable position:
    "<*> <num>" says nothing.
    """
    if not rows:
        return []
    columns = list(zip(*rows, strict=True))
    # Positions where every row agrees weigh the same in every node: count them once.
    varying, wordy = [], 0
    for p, column in enumerate(columns):
        if len(set(column)) > 1:
            varying.append(p)
        elif has_wording(column[0]):
            wordy += 1
    clusters: list[list[int]] = []
    todo = [list(range(len(rows)))]
    while todo:
        node = todo.pop()
        if len(node) == 1:
            clusters.append(node)
            continue
        split = _split_position(columns, node, varying, wordy, min_diversity, min_constant)
        if split is None:
            clusters.append(node)
            continue
        parts: dict[str, list[int]] = {}
        column = columns[split]
        for i in node:
            parts.setdefault(column[i], []).append(i)
        todo.extend(parts.values())
    return clusters


@lru_cache(maxsize=1 << 16)
def _shows(token: str) -> bool:
    """Whether a unit shows wording or a value, rather than punctuation alone."""
    return has_wording(token) or has_placeholder(token)


def _split_position(columns: list[tuple[str, ...]], node: list[int], varying: list[int], wordy: int,
                    min_diversity: int, min_constant: float) -> int | None:
    """The position to split `node` by, or None when its rows are one event. `wordy` counts the
    positions outside `varying` that hold wording (all of it kept)."""
    kept = wordy
    whole = len(node) == len(columns[0])
    constant: tuple[int, int] | None = None  # (distinct values, position) of the best split
    diverse: list[tuple[int, list[str]]] = []  # variable positions and their values
    for p in varying:
        column = columns[p]
        values = list(set(column) if whole else {column[i] for i in node})
        if not any(_shows(v) for v in values):
            if len(values) > 1:
                constant = min(constant or (len(values), p), (len(values), p))  # another shape
                if len(values) == 2:
                    break  # no split can have fewer values, nor an earlier position
            continue
        wording = any(has_wording(v) for v in values)
        wordy += wording
        if len(values) == 1:
            kept += wording
        elif len(values) >= min_diversity:
            diverse.append((p, values))
        else:
            pre, suf = unit_frame(values)
            if any(has_placeholder(v[pre : len(v) - suf]) for v in values):
                diverse.append((p, values))
            else:
                constant = min(constant or (len(values), p), (len(values), p))
                if len(values) == 2:
                    break
    if constant is not None:
        return constant[1]
    # Every difference is a variable: the rows are one event if enough wording stays.
    for _, values in diverse:
        pre, suf = unit_frame(values)
        first = values[0]
        kept += has_wording(first[:pre] + first[len(first) - suf :])
    if kept < min_constant * wordy and diverse:
        return min((len(values), p) for p, values in diverse)[1]
    return None


def generalize(rows: Sequence[Sequence[str]]) -> list[str]:
    """One template for rows of one event: each position where they differ gets a wildcard."""
    out = list(rows[0])
    for p in range(len(out)):
        values = sorted({r[p] for r in rows})
        if len(values) > 1:
            out[p] = generalize_unit(values)
    return out
