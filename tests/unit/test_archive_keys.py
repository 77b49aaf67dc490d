"""Archive keys, gzip JSON-lines encoding and dead-letter rows (pure)."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cali.core.archive import (
    DLQ_REASONS,
    DeadLetter,
    DeadLetterReason,
    decode_jsonl_gz,
    dlq_key,
    encode_jsonl_gz,
    raw_key,
)

SEQ_A = "49590338271490256608559692538361571095921575989136588898"  # 56 digits, as Kinesis gives
SEQ_B = "49590338271490256608559692540925702759324208523137515618"
ARRIVED = datetime(2026, 11, 26, 23, 59, 59, 999_000, tzinfo=UTC)


def test_raw_key_layout():
    assert raw_key("shardId-000000000001", SEQ_A, SEQ_B, ARRIVED) == (
        f"raw/dt=2026-11-26/hour=23/shardId-000000000001-{SEQ_A}-{SEQ_B}.jsonl.gz")


def test_dlq_key_layout():
    assert dlq_key("shardId-000000000001", SEQ_A, SEQ_B, ARRIVED) == (
        f"dlq/dt=2026-11-26/shardId-000000000001-{SEQ_A}-{SEQ_B}.jsonl.gz")


def test_keys_are_deterministic():
    assert raw_key("shardId-0", "1", "9", ARRIVED) == raw_key("shardId-0", "1", "9", ARRIVED)


@pytest.mark.parametrize(("arrived", "dt", "hour"), [
    (datetime(2026, 1, 1, 0, 0, tzinfo=UTC), "2026-01-01", "00"),
    # 01:30 at +02:00 is 23:30 UTC the day before: partitions are in UTC
    (datetime(2026, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))), "2025-12-31", "23"),
    (datetime(2026, 2, 28, 19, 5, tzinfo=timezone(timedelta(hours=-5))), "2026-03-01", "00"),
])
def test_partition_is_utc_arrival_time(arrived, dt, hour):
    assert raw_key("s", "1", "2", arrived).startswith(f"raw/dt={dt}/hour={hour}/")
    assert dlq_key("s", "1", "2", arrived).startswith(f"dlq/dt={dt}/s-")


@pytest.mark.parametrize(("shard", "first", "last", "arrived", "match"), [
    ("shardId-1", "1", "2", datetime(2026, 1, 1), "no timezone"),
    ("../etc", "1", "2", ARRIVED, "shard id"),
    ("a/b", "1", "2", ARRIVED, "shard id"),
    ("s", "01", "2", ARRIVED, "first_seq"),
    ("s", "1", "x", ARRIVED, "last_seq"),
    ("s", "10", "9", ARRIVED, "after"),  # 10 > 9 numerically although "10" < "9" as strings
])
def test_bad_key_inputs_are_refused(shard, first, last, arrived, match):
    with pytest.raises(ValueError, match=match):
        raw_key(shard, first, last, arrived)


def test_gzip_bytes_identical_for_same_batch():
    rows = [orjson.dumps({"message": f"m{i}", "level": "ERROR"}) for i in range(100)]
    first = encode_jsonl_gz(rows)
    assert encode_jsonl_gz(list(rows)) == first
    assert first[4:8] == b"\x00\x00\x00\x00"  # gzip MTIME field
    assert gzip.decompress(first).count(b"\n") == 100


def test_gzip_header():
    body = encode_jsonl_gz([b'{"a":1}'])
    assert body[:2] == b"\x1f\x8b"
    assert body[8] == 0  # XFL: 0 for levels 2-8 (2 = best, 4 = fastest)


def test_a_newline_inside_a_value_stays_inside_its_row():
    # orjson escapes it, which is why rows are joined without being scanned
    rows = [orjson.dumps({"message": "two\nlines"}), orjson.dumps({"message": "one"})]
    assert decode_jsonl_gz(encode_jsonl_gz(rows)) == [{"message": "two\nlines"}, {"message": "one"}]


def test_empty_batch_round_trips():
    assert decode_jsonl_gz(encode_jsonl_gz([])) == []


@given(st.lists(st.dictionaries(st.text(max_size=8), st.one_of(st.integers(-10**15, 10**15), st.text(),
                                                              st.booleans(), st.none())), max_size=20))
def test_jsonl_round_trip(docs):
    body = encode_jsonl_gz([orjson.dumps(d) for d in docs])
    assert decode_jsonl_gz(body) == docs
    assert encode_jsonl_gz([orjson.dumps(d) for d in docs]) == body


def test_decode_refuses_non_objects():
    with pytest.raises(ValueError, match="line 2"):
        decode_jsonl_gz(gzip.compress(b'{"a":1}\n[1,2]\n'))


def test_dead_letter_json_round_trip_keeps_original_bytes():
    data = b"\xff\xfe not utf-8 \x00\n{"
    dl = DeadLetter(reason="bad_utf8", error="invalid start byte at 0", shard_id="shardId-000000000001",
                    sequence_number=SEQ_A, line=3, data=data, arrived_at=ARRIVED)
    doc = orjson.loads(dl.to_json())
    assert set(doc) == {"reason", "error", "shard_id", "sequence_number", "line", "data_b64", "arrived_at"}
    assert doc["data_b64"] == "//4gbm90IHV0Zi04IAAKew=="
    assert doc["arrived_at"] == "2026-11-26T23:59:59.999000+00:00"
    assert DeadLetter.from_json(dl.to_json()) == dl
    assert b"\n" not in dl.to_json()


def test_dead_letters_go_through_the_dlq_object_format():
    letters = [DeadLetter(reason=r, error="e", shard_id="s", sequence_number=str(i), line=0,
                          data=f"line {i}".encode(), arrived_at=ARRIVED)
               for i, r in enumerate(sorted(DLQ_REASONS))]
    decoded = decode_jsonl_gz(encode_jsonl_gz(dl.to_json() for dl in letters))
    assert [DeadLetter.from_dict(d) for d in decoded] == letters


def test_dead_letter_reasons():
    assert sorted(DLQ_REASONS) == ["alerting_rejected", "alerting_unavailable", "bad_json", "bad_utf8",
                                   "index_rejected", "not_an_object", "oversized", "schema"]
    assert DeadLetterReason.SCHEMA == "schema"
    with pytest.raises(ValueError, match="reason"):
        DeadLetter(reason="nope", error="", shard_id="s", sequence_number="1", line=0, data=b"",
                   arrived_at=ARRIVED)
    with pytest.raises(ValueError, match="timezone"):
        DeadLetter(reason="schema", error="", shard_id="s", sequence_number="1", line=0, data=b"",
                   arrived_at=datetime(2026, 1, 1))
