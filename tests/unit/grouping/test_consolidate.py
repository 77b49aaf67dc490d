"""Consolidation of templates of one length: which differences are values, which name events."""

from cali.grouping.consolidate import generalize, partition


def rows(*messages: str) -> list[list[str]]:
    return [m.split() for m in messages]


def clusters(*messages: str) -> list[list[int]]:
    return sorted(sorted(c) for c in partition(rows(*messages), min_diversity=3, min_constant=0.5))


def test_three_values_are_a_variable() -> None:
    assert clusters("Invalid user alice from <ip>", "Invalid user bob from <ip>",
                    "Invalid user carol from <ip>") == [[0, 1, 2]]


def test_two_values_are_two_events() -> None:
    assert clusters("Failed password for root", "Failed none for root") == [[0], [1]]


def test_a_placeholder_in_the_difference_is_a_variable() -> None:
    assert clusters("rhost=<ip> ok", "rhost=<host> ok") == [[0, 1]]
    assert clusters("lock ws=null, held", "lock ws=Source{<num>}, held") == [[0, 1]]


def test_the_events_are_split_first_then_their_values_merge() -> None:
    got = clusters("Failed password for alice", "Failed password for bob", "Failed password for carol",
                   "Failed none for alice", "Failed none for bob", "Failed none for carol")
    assert got == [[0, 1, 2], [3, 4, 5]]


def test_too_little_wording_left() -> None:
    assert clusters("onStart <num>", "onStop <num>", "onPause <num>") == [[0], [1], [2]]


def test_different_punctuation_is_another_shape() -> None:
    assert clusters("a - b", "a | b") == [[0], [1]]


def test_generalize_puts_wildcards_where_rows_differ() -> None:
    assert generalize(rows("user=alice on red", "user=bob on blue")) == ["user=<*>", "on", "<*>"]
