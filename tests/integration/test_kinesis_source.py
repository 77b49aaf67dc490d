"""KinesisSource against kinesalite: round trip, resharding, resuming after a sequence number."""

from __future__ import annotations

from datetime import datetime

import pytest

from cali.sources.kinesis import IteratorExpired, KinesisSource, PutEntry, StreamNotFound, read_all

pytestmark = pytest.mark.integration


def test_put_get_round_trip(fresh_stream: KinesisSource):
    entries = [PutEntry(f'{{"n": {i}}}\n'.encode(), f"key-{i}") for i in range(50)]
    results = fresh_stream.put_records(entries)
    assert len(results) == 50 and all(r.ok for r in results)
    assert {r.shard_id for r in results} == {s.shard_id for s in fresh_stream.list_shards()}

    got = read_all(fresh_stream)
    assert sorted(r.data for r in got) == sorted(e.data for e in entries)
    by_data = {r.data: r for r in got}
    for entry, res in zip(entries, results, strict=True):
        rec = by_data[entry.data]
        assert rec.partition_key == entry.partition_key
        assert rec.sequence == res.sequence
        assert isinstance(rec.arrived_at, datetime)


def test_get_records_reports_lag_and_next_iterator(fresh_stream: KinesisSource):
    fresh_stream.put_records([PutEntry(b"x\n", "k")])
    shard = fresh_stream.list_shards()[0].shard_id
    batch = fresh_stream.get_records(fresh_stream.shard_iterator(shard, start="LATEST"))
    assert batch.records == []
    assert batch.next_iterator  # an open shard never ends
    assert batch.millis_behind_latest == 0


def test_after_sequence_number_resumes_exactly(fresh_stream: KinesisSource):
    fresh_stream.put_records([PutEntry(f"r{i}\n".encode(), "same-key") for i in range(20)])
    shard = next(s.shard_id for s in fresh_stream.list_shards()
                 if read_all(fresh_stream, [s.shard_id]))
    first = fresh_stream.get_records(fresh_stream.shard_iterator(shard), limit=7)
    assert [r.data for r in first.records] == [f"r{i}\n".encode() for i in range(7)]
    checkpoint = first.records[-1].sequence
    resumed = fresh_stream.get_records(fresh_stream.shard_iterator(shard, after_sequence=checkpoint))
    assert [r.data for r in resumed.records] == [f"r{i}\n".encode() for i in range(7, 20)]


def test_split_shard_closes_parent_and_lists_two_children(fresh_stream: KinesisSource):
    parent = fresh_stream.list_shards()[0]
    fresh_stream.put_records([PutEntry(b"before\n", "k")])
    fresh_stream.split_shard(parent.shard_id)
    fresh_stream.wait_active()

    shards = {s.shard_id: s for s in fresh_stream.list_shards()}
    assert len(shards) == 4
    assert shards[parent.shard_id].is_closed
    children = [s for s in shards.values() if s.parent_shard_id == parent.shard_id]
    assert len(children) == 2 and not any(c.is_closed for c in children)
    assert min(int(c.starting_hash_key) for c in children) == int(parent.starting_hash_key)
    assert max(int(c.ending_hash_key) for c in children) == int(parent.ending_hash_key)

    # Reading the closed parent ends: the last GetRecords has no NextShardIterator (SHARD_END).
    iterator = fresh_stream.shard_iterator(parent.shard_id)
    for _ in range(10):
        batch = fresh_stream.get_records(iterator)
        if batch.next_iterator is None:
            break
        iterator = batch.next_iterator
    assert batch.next_iterator is None


def test_typed_errors(kinesis_client):
    missing = KinesisSource(kinesis_client, "no-such-stream")
    with pytest.raises(StreamNotFound) as exc:
        missing.describe()
    assert "DescribeStreamSummary" in str(exc.value) and "no-such-stream" in str(exc.value)
    assert not missing.healthcheck().ok
    assert IteratorExpired.__mro__[1].__name__ == "KinesisError"
