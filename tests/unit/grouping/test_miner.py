"""Template miner: ids at once, consolidation by diversity, aliases, merge reports, bounded memory,
and the state the incident tracker stores (one small item plus one item per group).

Every line here is made up: none is taken from a Loghub system.
"""

import json
import string

from hypothesis import given, settings
from hypothesis import strategies as st

from cali.grouping.miner import MinerConfig, TemplateMiner


def ids(miner: TemplateMiner, messages: list[str]) -> list[str]:
    return [miner.add(m).group_id for m in messages]


def test_an_id_and_a_template_at_once() -> None:
    m = TemplateMiner().add("disk 3 of node 7 is full")
    assert m.group_id == "g1"
    assert m.template == "disk <num> of node <num> is full"


def test_a_position_with_diverse_words_becomes_a_wildcard() -> None:
    miner = TemplateMiner()
    first, second, third = ids(miner, ["Invalid user alice from 10.0.0.1", "Invalid user bob from 10.0.0.2",
                                       "Invalid user carol from 10.0.0.3"])
    assert (first, second) == ("g1", "g2")  # two names could be two events: no evidence yet
    assert third == "g1"  # the third name is: the oldest id stays
    assert miner.template("g1") == "Invalid user <*> from <ip>"
    assert miner.add("Invalid user dave from 10.0.0.4").group_id == "g1"


def test_ids_are_never_reused_and_old_ids_resolve() -> None:
    miner = TemplateMiner()
    returned = ids(miner, [f"Invalid user {u} from 10.0.0.1" for u in ("alice", "bob", "carol")])
    assert returned == ["g1", "g2", "g1"]
    assert miner.resolve("g2") == "g1"
    assert miner.resolve("g1") == "g1"
    assert miner.template("g2") == miner.template("g1")
    assert miner.add("something else entirely").group_id == "g4"  # g3 was given out, then merged


def test_merges_are_reported_once() -> None:
    miner = TemplateMiner()
    ids(miner, [f"Invalid user {u} from 10.0.0.1" for u in ("alice", "bob", "carol")])
    assert miner.drain_merges() == [("g2", "g1"), ("g3", "g1")]
    assert miner.drain_merges() == []


def test_a_merged_group_brings_its_aliases_along() -> None:
    miner = TemplateMiner()
    given = ids(miner, ["user alice on host red has finished the nightly backup"])
    given += ids(miner, [f"user {u} on host blue has finished the nightly backup" for u in ("bob", "carol", "dave")])
    assert given == ["g1", "g2", "g3", "g2"]  # the users are values; two colours could be two events
    assert miner.drain_merges() == [("g3", "g2"), ("g4", "g2")]
    given += ids(miner, [f"user {u} on host {c} has finished the nightly backup"
                         for u, c in (("erin", "green"), ("frank", "pink"))])
    assert given[-2:] == ["g1", "g1"]  # four colours are values too
    assert {miner.resolve(g) for g in (*given, "g4")} == {"g1"}
    assert miner.drain_merges() == [("g2", "g1"), ("g3", "g1"), ("g4", "g1"), ("g5", "g1")]
    assert miner.template("g4") == "user <*> on host <*> has finished the nightly backup"


def test_two_values_name_two_events() -> None:
    miner = TemplateMiner()
    got = ids(miner, ["Failed password for root from 10.0.0.1 port 22",
                      "Failed none for root from 10.0.0.2 port 23"] * 3)
    assert got[0] != got[1]
    assert got == [got[0], got[1]] * 3


def test_the_first_word_may_be_the_variable() -> None:
    miner = TemplateMiner()
    got = ids(miner, [f"{host} finished job 17 in queue main" for host in ("alpha", "bravo", "charlie", "delta")])
    assert len({miner.resolve(g) for g in got}) == 1
    assert miner.template(got[0]) == "<*> finished job <num> in queue main"


def test_a_host_in_front_of_a_short_message() -> None:
    miner = TemplateMiner()
    got = ids(miner, [f"{host} onStart {n}" for n, host in enumerate(("alton", "brimere", "corwick", "dunby"))])
    got += ids(miner, [f"{host} onStop {n}" for n, host in enumerate(("alton", "brimere", "corwick"))])
    assert len({miner.resolve(g) for g in got[:4]}) == 1
    assert len({miner.resolve(g) for g in got[4:]}) == 1
    assert miner.resolve(got[0]) != miner.resolve(got[4])


def test_a_template_keeps_enough_wording() -> None:
    # Short messages whose one word changes are different events, however many there are.
    miner = TemplateMiner()
    got = ids(miner, ["onStart 1", "onStop 2", "onPause 3", "onResume 4"])
    assert len({miner.resolve(g) for g in got}) == 4


def test_a_value_inside_a_unit() -> None:
    # A masked value in the differing part of a unit makes it a variable at once: "ws=<*>,".
    miner = TemplateMiner()
    a = miner.add("lock held ws=null, uid=1")
    b = miner.add("lock held ws=Source{10113}, uid=2")
    assert a.group_id == b.group_id == "g1"
    assert b.template == "lock held ws=<*>, uid=<num>"
    c = miner.add("login from rhost= ok")
    d = miner.add("login from rhost=10.0.0.1 ok")  # an empty value is a value
    assert miner.resolve(c.group_id) == miner.resolve(d.group_id)


def test_a_different_length_is_a_different_event() -> None:
    miner = TemplateMiner()
    got = ids(miner, ["Connection closed by 1.2.3.4", "Connection closed by 1.2.3.4 [preauth]"])
    assert got[0] != got[1]


# Values that the masking table always replaces, whatever their content, by kind.
_KINDS = {
    "num": st.integers(min_value=-10**12, max_value=10**12).map(str),
    "ip": st.ip_addresses(v=4).map(str),
    "uuid": st.uuids().map(str),
    "hex": st.integers(min_value=0, max_value=2**64).map(hex),
    "float": st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda f: f"{f:.3f}"),
    "id": st.lists(st.sampled_from(string.ascii_lowercase), min_size=1, max_size=8)
    .map(lambda cs: "job_" + "".join(cs) + "_42"),
    "duration": st.integers(min_value=0, max_value=10**6).map(lambda n: f"{n}ms"),
    "bool": st.sampled_from(["true", "false", "True", "FALSE"]),
}
_TEMPLATES = [
    ("Worker {} of pool {} stopped", ["num", "num"]),
    ("Accepted connection /{} for session {}", ["ip", "uuid"]),
    ("acquire lock={}, flags={}, uid={}, ready={}", ["num", "hex", "num", "bool"]),
    ("Write of {} took {} at load {}", ["id", "duration", "float"]),
]


@st.composite
def _two_messages(draw: st.DrawFn) -> tuple[str, str]:
    template, kinds = draw(st.sampled_from(_TEMPLATES))
    first = [draw(_KINDS[k]) for k in kinds]
    second = [draw(_KINDS[k]) for k in kinds]
    return template.format(*first), template.format(*second)


@settings(max_examples=200, deadline=None)
@given(_two_messages())
def test_group_survives_changes_of_masked_variables(messages: tuple[str, str]) -> None:
    miner = TemplateMiner()
    a, b = (miner.add(m) for m in messages)
    assert a.group_id == b.group_id
    assert a.template == b.template  # nothing was generalised: the masks did all the work


# -- persistence: the shape the tracker stores ---------------------------------------------------
def test_state_is_meta_plus_one_small_item_per_group() -> None:
    miner = TemplateMiner()
    ids(miner, [f"Invalid user {u} from 10.0.0.1" for u in ("alice", "bob", "carol")] + ["disk 3 full"])
    state = miner.to_state()
    assert set(state) == {"meta", "groups"}
    assert set(state["groups"]) == {"g1", "g4"}
    assert state["groups"]["g1"]["aliases"] == ["g2", "g3"]
    assert len(json.dumps(state["meta"])) < 20_000
    assert all(len(json.dumps(item)) < 16_000 for item in state["groups"].values())


def test_a_group_item_changes_only_with_its_template_or_aliases() -> None:
    miner = TemplateMiner()
    ids(miner, ["disk 3 full", "disk 4 full", "user bob logged in"])
    before = miner.to_state()["groups"]
    ids(miner, ["disk 9 full"] * 50 + ["user bob logged in"] * 5)
    after = miner.to_state()["groups"]
    assert after == before


def test_save_and_load_keep_ids_templates_and_aliases(tmp_path) -> None:
    miner = TemplateMiner()
    ids(miner, [f"Invalid user {u} from 10.0.0.1" for u in ("alice", "bob", "carol")] + ["disk 3 full"])
    path = tmp_path / "state.json"
    miner.save(path)

    restored = TemplateMiner.load(path)
    assert restored.to_state() == miner.to_state()
    assert restored.resolve("g2") == "g1"
    assert restored.add("Invalid user zoe from 10.9.9.9").group_id == "g1"
    assert restored.add("disk 8 full").group_id == "g4"
    assert restored.add("a brand new event").group_id == "g5"  # ids keep counting


def test_config_round_trips_and_a_wrong_version_is_refused() -> None:
    miner = TemplateMiner(MinerConfig(min_diversity=4, disabled=("bool",)))
    again = TemplateMiner.from_state(json.loads(json.dumps(miner.to_state())))
    assert again.config == miner.config
    state = miner.to_state()
    state["meta"]["version"] = 1
    try:
        TemplateMiner.from_state(state)
    except ValueError as e:
        assert "version" in str(e)
    else:
        raise AssertionError("an old state was accepted")


# -- bounded memory --------------------------------------------------------------------------
def _word(i: int) -> str:
    return "".join(string.ascii_lowercase[int(d)] for d in str(i))


def test_groups_and_cache_are_bounded_and_least_recent_groups_go_first() -> None:
    miner = TemplateMiner(MinerConfig(max_groups=10, cache_size=5))
    keep = miner.add("heartbeat ok").group_id
    for i in range(60):
        miner.add("heartbeat ok")
        miner.add(f"event {_word(i)} happened here")  # 60 short events: none generalise
    assert len(miner) <= 10
    assert len(miner._cache) <= 5
    assert keep in {m.group_id for m in miner.groups()}


def test_aliases_are_bounded_per_group() -> None:
    miner = TemplateMiner(MinerConfig(max_aliases=3))
    ids(miner, ["user alice on host red has finished the nightly backup"])
    ids(miner, [f"user {u} on host blue has finished the nightly backup" for u in ("bob", "carol", "dave")])
    ids(miner, ["user erin on host green has finished the nightly backup"])
    aliases = miner.to_state()["groups"]["g1"]["aliases"]
    assert len(aliases) == 3
    assert all(miner.resolve(a) == "g1" for a in aliases)
    assert miner.resolve("g2") == "g2"  # the oldest alias was forgotten: it resolves to itself


def test_long_messages_are_cut() -> None:
    miner = TemplateMiner(MinerConfig(max_chars=20))
    a = miner.add("x" * 10 + " tail one " + "y" * 100)
    b = miner.add("x" * 10 + " tail one " + "z" * 100)
    assert a.group_id == b.group_id


def test_forgetting_groups_while_consolidating() -> None:
    # Newcomers near groups that are being forgotten: nothing breaks, bounds hold, ids stay new.
    miner = TemplateMiner(MinerConfig(max_groups=5))
    given = []
    for i in range(200):
        given.append(miner.add(f"job {_word(i)} of user {_word(i * 7)} on host {_word(i % 3)} ended").group_id)
    assert len(miner) <= 5
    assert len(set(given)) < 200  # the users and jobs were learned as values along the way


def test_a_group_item_stays_small_in_the_worst_case() -> None:
    # The longest message, all of it non-ASCII (six bytes each in JSON), and every alias taken.
    config = MinerConfig()
    miner = TemplateMiner(config)
    gid = miner.add("é" * (config.max_chars + 100)).group_id
    item = miner.to_state()["groups"][gid]
    item["aliases"] = [f"g{10**8 + i}" for i in range(config.max_aliases)]
    assert len(json.dumps(item)) < 16_000


def test_a_crowded_length_finds_the_same_groups() -> None:
    # Past a few dozen groups of one length the miner looks them up through an index of units.
    miner = TemplateMiner()
    events = [f"{_word(i)}a {_word(i)}b {_word(i)}c {_word(i)}d" for i in range(60)]
    first = ids(miner, events)
    assert len(set(first)) == 60
    assert ids(miner, events) == first
    got = ids(miner, [f"user {u} left {_word(7)}" for u in ("alice", "bob", "carol", "dave")])  # four units too
    assert len({miner.resolve(g) for g in got}) == 1
    assert miner.add(f"user erin left {_word(7)}").template == f"user <*> left {_word(7)}"


def test_many_distinct_messages_of_one_length_stay_cheap() -> None:
    # Each newcomer meets the groups that share units with it, not every group of its length.
    miner = TemplateMiner()
    for i in range(3000):
        miner.add(" ".join(f"{_word(i * 7 + k)}x" for k in range(12)))
    assert len(miner) == 3000
