"""Units: where a wildcard goes in a unit, and which tokens a template unit matches."""

import pytest

from cali.grouping.tokens import digit_blind, generalize_unit, has_wording, tokenize, unit_matches

GENERALISED = [
    (["user=alice", "user=bob"], "user=<*>"),
    (["alice", "albert"], "<*>"),  # never "al<*>": a wildcard does not cut a word
    (["<ip>", "<id>"], "<*>"),  # nor a placeholder
    (["(<host>)", "()"], "(<*>)"),  # an empty value is a value
    (["rhost=", "rhost=<ip>"], "rhost=<*>"),
    (["ws=null,", "ws=Source{<num>},"], "ws=<*>,"),
    (["/srv/a/tmp/<id>.", "/srv/bb/tmp/<id>."], "/srv/<*>/tmp/<id>."),
    (["<*>=x", "<*>=y"], "<*>=<*>"),
]


@pytest.mark.parametrize(("values", "expected"), GENERALISED)
def test_generalize_unit(values: list[str], expected: str) -> None:
    assert generalize_unit(values) == expected
    assert all(unit_matches(expected, v) for v in values)


MATCHES = [
    ("user=<*>", "user=carol", True),
    ("user=<*>", "uid=1", False),
    ("(<*>)", "()", True),
    ("a<*>b", "b", False),  # prefix and suffix may not overlap
    ("<*>=<*>", "<num>=z", True),
    ("<*>=<*>", "z", False),
    ("plain", "plain", True),
    ("plain", "other", False),
]


@pytest.mark.parametrize(("template", "token", "expected"), MATCHES)
def test_unit_matches(template: str, token: str, expected: bool) -> None:
    assert unit_matches(template, token) is expected


def test_wording_is_a_letter_outside_placeholders() -> None:
    assert has_wording("uid=<num>")
    assert not has_wording("<ip>:<num>")
    assert not has_wording("(")
    assert not has_wording("<*>")


def test_units_split_at_whitespace_only() -> None:
    assert tokenize("acquire lock=<num>,  tag=<*>\tok") == ["acquire", "lock=<num>,", "tag=<*>", "ok"]


def test_digit_blind_key_ignores_digit_values() -> None:
    assert digit_blind("job 12 took 5 ms") == digit_blind("job 7 took 31415 ms")
    assert digit_blind("job 12 took 5 ms") != digit_blind("job 12 took 5 s")
