"""Kinesis Data Streams adapter (boto3): shards, iterators, GetRecords, PutRecords; works on kinesalite."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from cali.core.ports import Health

START_POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")
MAX_PUT_RECORDS = 500


class KinesisError(RuntimeError):
    """A Kinesis call failed; the message carries the operation, parameters and AWS error."""

    def __init__(self, operation: str, params: dict[str, Any], exc: Exception) -> None:
        self.operation = operation
        self.params = params
        self.code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
        self.response = getattr(exc, "response", None)
        super().__init__(f"Kinesis {operation}({_short(params)}) failed: {exc}")


class Throttled(KinesisError):
    """ProvisionedThroughputExceededException: back off and retry the same call."""


class IteratorExpired(KinesisError):
    """ExpiredIteratorException: get a new iterator from the last checkpoint."""


class StreamNotFound(KinesisError):
    """ResourceNotFoundException: the stream or shard does not exist."""


_TYPED = {"ProvisionedThroughputExceededException": Throttled, "ExpiredIteratorException": IteratorExpired,
          "ResourceNotFoundException": StreamNotFound}


def _short(params: dict[str, Any]) -> str:
    shown = {k: (f"<{len(v)} records>" if k == "Records" else
                 v[:16] + "..." if isinstance(v, str) and len(v) > 40 else v) for k, v in params.items()}
    return ", ".join(f"{k}={v}" for k, v in shown.items())


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parent_shard_id: str | None
    adjacent_parent_shard_id: str | None
    starting_sequence: str
    ending_sequence: str | None  # set once the shard is closed (split or merged)
    starting_hash_key: str
    ending_hash_key: str

    @property
    def is_closed(self) -> bool:
        return self.ending_sequence is not None


class Record(NamedTuple):
    """One record of GetRecords; a NamedTuple, as a reader makes 10,000 of them per call."""

    data: bytes
    sequence: str
    partition_key: str
    arrived_at: datetime | None


@dataclass(frozen=True)
class RecordBatch:
    records: list[Record]
    next_iterator: str | None  # None at SHARD_END: the shard is closed and fully read
    millis_behind_latest: int | None


@dataclass(frozen=True)
class PutEntry:
    data: bytes
    partition_key: str
    explicit_hash_key: str | None = None


@dataclass(frozen=True)
class PutResult:
    ok: bool
    shard_id: str | None = None
    sequence: str | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass
class KinesisSource:
    client: Any
    stream: str
    calls: dict[str, int] = field(default_factory=dict)

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        method = getattr(self.client, _snake(operation))
        try:
            return method(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise _TYPED.get(code, KinesisError)(operation, params, exc) from exc
        except BotoCoreError as exc:
            raise KinesisError(operation, params, exc) from exc

    def list_shards(self) -> list[Shard]:
        """ListShards, following NextToken; includes closed shards with their EndingSequenceNumber."""
        shards: list[Shard] = []
        params: dict[str, Any] = {"StreamName": self.stream}
        while True:
            page = self._call("ListShards", **params)
            shards.extend(_shard(s) for s in page.get("Shards", []))
            token = page.get("NextToken")
            if not token:
                return shards
            params = {"NextToken": token}

    def describe(self) -> dict[str, Any]:
        """DescribeStreamSummary: status, open shard count, retention, ARN."""
        return self._call("DescribeStreamSummary", StreamName=self.stream)["StreamDescriptionSummary"]

    def shard_iterator(self, shard_id: str, *, after_sequence: str | None = None, start: str = "TRIM_HORIZON",
                       timestamp: datetime | None = None) -> str:
        """GetShardIterator: AFTER_SEQUENCE_NUMBER when a checkpoint exists, else `start`."""
        params: dict[str, Any] = {"StreamName": self.stream, "ShardId": shard_id}
        if after_sequence is not None:
            params.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=after_sequence)
        else:
            if start not in START_POSITIONS:
                raise ValueError(f"start must be one of {START_POSITIONS}, got {start!r}")
            params["ShardIteratorType"] = start
            if start == "AT_TIMESTAMP":
                if timestamp is None:
                    raise ValueError("start=AT_TIMESTAMP needs a timestamp")
                params["Timestamp"] = timestamp
        return self._call("GetShardIterator", **params)["ShardIterator"]

    def get_records(self, iterator: str, limit: int = 10000) -> RecordBatch:
        """GetRecords; raises Throttled / IteratorExpired for the reader to handle."""
        resp = self._call("GetRecords", ShardIterator=iterator, Limit=limit)
        records = [Record(data=r["Data"], sequence=r["SequenceNumber"], partition_key=r["PartitionKey"],
                          arrived_at=r.get("ApproximateArrivalTimestamp")) for r in resp.get("Records", [])]
        return RecordBatch(records, resp.get("NextShardIterator"), resp.get("MillisBehindLatest"))

    def put_records(self, entries: Sequence[PutEntry]) -> list[PutResult]:
        """PutRecords (<= 500 entries); one result per entry, in order; failed entries carry ErrorCode."""
        if not entries:
            return []
        if len(entries) > MAX_PUT_RECORDS:
            raise ValueError(f"PutRecords takes at most {MAX_PUT_RECORDS} entries, got {len(entries)}")
        records = []
        for e in entries:
            rec: dict[str, Any] = {"Data": e.data, "PartitionKey": e.partition_key}
            if e.explicit_hash_key:
                rec["ExplicitHashKey"] = e.explicit_hash_key
            records.append(rec)
        resp = self._call("PutRecords", StreamName=self.stream, Records=records)
        return [PutResult(ok="ErrorCode" not in r, shard_id=r.get("ShardId"),
                          sequence=r.get("SequenceNumber"), error_code=r.get("ErrorCode"),
                          error_message=r.get("ErrorMessage"))
                for r in resp["Records"]]

    def split_shard(self, shard_id: str, new_starting_hash_key: str | None = None) -> None:
        """SplitShard at the given hash key (default: the middle of the shard's range)."""
        if new_starting_hash_key is None:
            shard = next((s for s in self.list_shards() if s.shard_id == shard_id), None)
            if shard is None:
                raise ValueError(f"no shard {shard_id} in stream {self.stream}")
            lo, hi = int(shard.starting_hash_key), int(shard.ending_hash_key)
            new_starting_hash_key = str((lo + hi) // 2)
        self._call("SplitShard", StreamName=self.stream, ShardToSplit=shard_id,
                   NewStartingHashKey=new_starting_hash_key)

    def merge_shards(self, shard_id: str, adjacent_shard_id: str) -> None:
        """MergeShards of two adjacent open shards."""
        self._call("MergeShards", StreamName=self.stream, ShardToMerge=shard_id,
                   AdjacentShardToMerge=adjacent_shard_id)

    def wait_active(self, timeout_s: float = 10.0, poll_s: float = 0.05) -> dict[str, Any]:
        """Polls DescribeStreamSummary until the stream is ACTIVE (after create, split or merge)."""
        deadline = time.monotonic() + timeout_s
        while True:
            summary = self.describe()
            if summary["StreamStatus"] == "ACTIVE":
                return summary
            if time.monotonic() > deadline:
                raise TimeoutError(f"stream {self.stream} still {summary['StreamStatus']} after {timeout_s}s")
            time.sleep(poll_s)

    def healthcheck(self) -> Health:
        """DescribeStreamSummary: the stream exists and is ACTIVE."""
        endpoint = getattr(getattr(self.client, "meta", None), "endpoint_url", "?")
        try:
            summary = self.describe()
        except KinesisError as exc:
            hint = ("create it (cali stack up) or fix the stream name" if isinstance(exc, StreamNotFound)
                    else "is the Kinesis endpoint up? (cali stack status)")
            return Health("kinesis", False, f"{exc} at {endpoint}; {hint}")
        ok = summary["StreamStatus"] in ("ACTIVE", "UPDATING")
        return Health("kinesis", ok, f"stream {self.stream} {summary['StreamStatus']}, "
                                     f"{summary.get('OpenShardCount')} open shards at {endpoint}")


def _shard(s: dict[str, Any]) -> Shard:
    seq = s.get("SequenceNumberRange", {})
    hk = s.get("HashKeyRange", {})
    return Shard(shard_id=s["ShardId"], parent_shard_id=s.get("ParentShardId"),
                 adjacent_parent_shard_id=s.get("AdjacentParentShardId"),
                 starting_sequence=seq.get("StartingSequenceNumber", ""),
                 ending_sequence=seq.get("EndingSequenceNumber"),
                 starting_hash_key=hk.get("StartingHashKey", "0"),
                 ending_hash_key=hk.get("EndingHashKey", "0"))


def _snake(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")


def read_all(source: KinesisSource, shard_ids: Iterable[str] | None = None,
             max_empty: int = 2) -> list[Record]:
    """Reads every shard from TRIM_HORIZON until SHARD_END or `max_empty` empty responses (tests, replays)."""
    out: list[Record] = []
    ids = list(shard_ids) if shard_ids is not None else [s.shard_id for s in source.list_shards()]
    for shard_id in ids:
        iterator: str | None = source.shard_iterator(shard_id)
        empty = 0
        while iterator and empty < max_empty:
            batch = source.get_records(iterator)
            out.extend(batch.records)
            empty = 0 if batch.records else empty + 1
            iterator = batch.next_iterator
    return out
