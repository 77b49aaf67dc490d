"""A day of archive objects made from the log generator, as the readers would have written it.

For the batch tests and benchmarks (and nothing in the pipeline): the generator's events become
archive rows with `event_id`s, and the alert-worthy ones get the `incident_key` a tracker would have
given them (the same template miner per service over `grouping_text`), except a share left without one,
as records the trackers did not count are.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import orjson

from cali.core.archive import DeadLetter, dlq_key, encode_jsonl_gz, raw_key
from cali.core.fingerprint import grouping_text, incident_key
from cali.core.records import LogRecord
from cali.gen.generator import ALERTABLE, LogGenerator
from cali.grouping import TemplateMiner

OBJECT_RECORDS = 5000  # archive.flush_max_records: what one reader object holds at most
SHARDS = ("shardId-000000000000", "shardId-000000000001")


def day_rows(day: str, records: int, seed: int = 7, keyed_share: float = 0.9,
             incident_every_s: float = 600.0) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(shard, sequence, row) for about `records` events spread over the UTC day, in time order."""
    start = datetime.combine(date.fromisoformat(day), datetime.min.time(), tzinfo=UTC)
    gen = LogGenerator(seed=seed, rate=records / 86_400, incident_every_s=incident_every_s, start=start)
    rng = random.Random(seed)
    miners: dict[str, TemplateMiner] = {}
    seqs = dict.fromkeys(SHARDS, 10**20)
    for i, ev in enumerate(gen.events(86_399.0)):
        if i >= records:
            return
        message, stack = ev.message, "\n".join(ev.stack) if ev.stack else None
        if ev.raw:
            message, stack = ev.raw[0], "\n".join(ev.raw[1:]) or None
        shard = SHARDS[i % len(SHARDS)]
        seqs[shard] += rng.randint(1, 1000)
        row: dict[str, Any] = {"timestamp": datetime.fromtimestamp(ev.ts_ms / 1000, UTC), "level": ev.level,
                               "service": ev.service, "message": message or "(empty)",
                               "event_id": f"{shard}:{seqs[shard]}:0"}
        if stack:
            row["stack"] = stack
        if ev.level in ALERTABLE and rng.random() < keyed_share:
            miner = miners.setdefault(ev.service, TemplateMiner())
            text = grouping_text(LogRecord.model_construct(message=row["message"], stack=stack))
            row["incident_key"] = incident_key(ev.service, ev.level, miner.add(text).group_id)
        yield shard, seqs[shard], row


def write_day(put: Callable[[str, bytes], None], day: str, records: int, seed: int = 7, dlq_share: float = 0.001,
              defects: Callable[[int, dict[str, Any]], dict[str, Any] | None] | None = None) -> dict[str, int]:
    """Writes the day as the readers do (one object per shard and batch, dt/hour from the first record);
    `defects(i, row)` may return a changed row (or None to keep it). Returns counts of what it wrote."""
    batches: dict[str, list[tuple[int, dict[str, Any]]]] = {s: [] for s in SHARDS}
    counts = {"records": 0, "objects": 0, "dlq": 0, "alertable": 0}
    rng = random.Random(seed + 1)

    def flush(shard: str) -> None:
        rows = batches[shard]
        if not rows:
            return
        first, last = rows[0][0], rows[-1][0]
        ts = rows[0][1]["timestamp"]
        arrived = ts if isinstance(ts, datetime) else datetime.fromisoformat(f"{day}T12:00:00+00:00")
        put(raw_key(shard, str(first), str(last), arrived),
            encode_jsonl_gz(orjson.dumps(r, option=orjson.OPT_UTC_Z) for _, r in rows))
        dead = [DeadLetter("bad_json", "Expecting value", shard, str(seq), 0, b"{not json", arrived).to_json()
                for seq, _ in rows if rng.random() < dlq_share]
        if dead:
            put(dlq_key(shard, str(first), str(last), arrived), encode_jsonl_gz(dead))
            counts["dlq"] += len(dead)
        counts["objects"] += 1
        rows.clear()

    for i, (shard, seq, row) in enumerate(day_rows(day, records, seed)):
        counts["alertable"] += row["level"] in ALERTABLE
        if defects is not None:
            row = defects(i, row) or row
        batches[shard].append((seq, row))
        counts["records"] += 1
        if len(batches[shard]) >= OBJECT_RECORDS:
            flush(shard)
    for shard in SHARDS:
        flush(shard)
    return counts
