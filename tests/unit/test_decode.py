import base64
import json
from datetime import UTC, datetime

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from cali.core.decode import RawRecord, decode_batch, event_id
from cali.core.records import LogRecord

T = datetime(2026, 11, 26, tzinfo=UTC)
GOOD = {"time": "2026-11-26 12:00:00.123", "level": "ERROR", "service": "orders-api", "message": "boom"}


def decode(*raws: RawRecord, shard: str):
    return decode_batch(list(raws), shard, T)


def raw(data: bytes, seq: str = "1") -> RawRecord:
    return RawRecord(data, seq, "k", T)


CASES = [
    ("valid", orjson.dumps(GOOD) + b"\n", 1, None),
    ("aggregated", orjson.dumps(GOOD) + b"\n" + orjson.dumps({**GOOD, "message": "b"}) + b"\n", 2, None),
    ("bad_utf8", b'{"message": "\xff\xfe"}\n', 0, "bad_utf8"),
    ("bad_json", b'{"level": "ERROR", \n', 0, "bad_json"),
    ("not_an_object", b"[1, 2, 3]\n", 0, "not_an_object"),
    ("schema", orjson.dumps({**GOOD, "level": "LOUD"}) + b"\n", 0, "schema"),
    ("missing_field", orjson.dumps({"message": "x"}) + b"\n", 0, "schema"),
    ("oversized", orjson.dumps({**GOOD, "message": "x" * 300_000}) + b"\n", 0, "oversized"),
]


def test_table():
    for name, data, n_ok, reason in CASES:
        out = decode(raw(data), shard="shardId-000000000000")
        assert len(out.rows) == n_ok, name
        if reason:
            (dead,) = out.dead
            assert dead.reason == reason, name
            doc = orjson.loads(dead.to_json())
            assert doc["shard_id"] == "shardId-000000000000" and doc["sequence_number"] == "1"
            assert base64.b64decode(doc["data_b64"]) in data
            assert doc["error"]


def test_schema_reason_names_the_field():
    out = decode(raw(orjson.dumps({**GOOD, "level": "LOUD"})), shard="s")
    assert out.dead[0].error.startswith("level:")


def test_a_bad_utf8_line_does_not_sink_its_neighbours():
    out = decode(raw(orjson.dumps(GOOD) + b"\n" + b'{"message": "\xff"}\n' + orjson.dumps(GOOD)), shard="s")
    assert len(out.rows) == 2 and [d.reason for d in out.dead] == ["bad_utf8"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes_never_raise_and_every_line_is_accounted(data):
    out = decode(raw(data), shard="s")
    lines = [ln for ln in data.split(b"\n") if ln.strip()]
    assert len(out.rows) + len(out.dead) == len(lines)  # every line: a record or a dead letter


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                           max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["time", "ts", "level", "service", "message", "msg", "stack", "host",
                                       "trace_id", "attributes", "err", "status", "event_id", "x"]),
                       json_values, max_size=8))
def test_random_json_objects_validate_or_dead_letter(obj):
    out = decode(raw(json.dumps(obj).encode()), shard="s")
    assert len(out.rows) + len(out.dead) == 1
    # The batch validator and the model are one definition: a row the batch accepts is a valid LogRecord.
    for row in out.rows:
        assert LogRecord.model_validate(row).model_dump(exclude={"incident_key"}) == \
            {**{"stack": None, "host": None, "trace_id": None, "span_id": None, "env": None, "attributes": {}}, **row}


def test_identical_lines_are_two_records_with_ids_from_their_position():
    # Two users hitting the same 502 in the same millisecond: two events, never a "replay".
    line = orjson.dumps(GOOD)
    out = decode(raw(line + b"\n" + line + b"\n", seq="7"), raw(line, seq="8"), shard="shardId-1")
    assert [r["event_id"] for r in out.rows] == ["shardId-1:7:0", "shardId-1:7:1", "shardId-1:8:0"]
    assert out.positions == [("7", 0), ("7", 1), ("8", 0)]
    # A replay of the same Kinesis record gets the same ids.
    again = decode(raw(line + b"\n" + line + b"\n", seq="7"), shard="shardId-1")
    assert [r["event_id"] for r in again.rows] == ["shardId-1:7:0", "shardId-1:7:1"]


def test_an_application_event_id_is_an_attribute_not_the_identity():
    out = decode(raw(orjson.dumps({**GOOD, "event_id": "order-42"}), seq="1"),
                        raw(orjson.dumps({**GOOD, "eventId": "order-42"}), seq="2"), shard="s")
    assert [r["event_id"] for r in out.rows] == ["s:1:0", "s:2:0"]
    assert out.rows[0]["attributes"] == {"event_id": "order-42"}
    assert out.rows[1]["attributes"] == {"eventId": "order-42"}


def test_event_id_stays_within_its_limit():
    assert len(event_id("s" * 128, "9" * 129, 3)) <= 128


def test_bad_rows_in_a_batch_are_dead_lettered_and_the_rest_kept_in_order():
    good = [orjson.dumps({**GOOD, "message": f"m{i}"}) for i in range(5)]
    bad = orjson.dumps({**GOOD, "service": "no spaces allowed"})
    out = decode(raw(b"\n".join([good[0], bad, good[1]]), seq="1"), raw(good[2], seq="2"), shard="s")
    assert [r["message"] for r in out.rows] == ["m0", "m1", "m2"]
    assert out.positions == [("1", 0), ("1", 2), ("2", 0)]
    (dead,) = out.dead
    assert dead.reason == "schema" and dead.line == 1 and dead.error.startswith("service:") and dead.data == bad
