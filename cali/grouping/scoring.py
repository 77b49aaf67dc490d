"""Grouping accuracy (GA), group-level F1 (FGA) and template accuracy (PA) against ground truth."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class GroupingScore:
    messages: int
    truth_groups: int
    predicted_groups: int
    ga: float
    fga: float
    pa: float | None = None


def template_accuracy(truth: Mapping[str, str], predicted: Mapping[str, str]) -> float:
    """PA: the share of lines whose predicted template is exactly the true template string."""
    if not truth:
        return 0.0
    return sum(predicted.get(line) == template for line, template in truth.items()) / len(truth)


def score(truth: Mapping[str, str], predicted: Mapping[str, str]) -> GroupingScore:
    """Score `predicted` (line id -> group) against `truth` (line id -> true group).

    Only the lines in `truth` count: the caller drops lines whose true template is empty, as the
    Loghub evaluators do. A truth line missing from `predicted` is a wrong line.
    """
    members: dict[str, list[str]] = defaultdict(list)
    for line, group in truth.items():
        members[group].append(line)
    sizes = Counter(predicted[line] for line in truth if line in predicted)

    right_lines = right_groups = 0
    for lines in members.values():
        found = {predicted.get(line) for line in lines}
        if len(found) != 1 or None in found:
            continue
        # GA asks for the predicted group to hold exactly the true group's lines, no more.
        if sizes[found.pop()] == len(lines):
            right_lines += len(lines)
            right_groups += 1

    precision = right_groups / len(sizes) if sizes else 0.0
    recall = right_groups / len(members) if members else 0.0
    fga = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return GroupingScore(
        messages=len(truth),
        truth_groups=len(members),
        predicted_groups=len(sizes),
        ga=right_lines / len(truth) if truth else 0.0,
        fga=fga,
    )
