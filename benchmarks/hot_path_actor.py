"""The hot path through one ShardReader actor: kinesalite -> decode/validate -> moto S3 -> checkpoint."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from cali.stack.procs import free_port

AGGREGATE = 25  # log events per Kinesis record, as Fluent Bit's simple_aggregation packs them


def emulator_ceiling(source, events: int) -> int:  # noqa: ANN001
    """Log events/s that GetRecords alone delivers from this shard, in the benchmark's process: what no
    reader of this stack can exceed, whatever its own speed."""
    shard = source.list_shards()[0].shard_id
    iterator, t = source.shard_iterator(shard), time.perf_counter()
    read = 0
    while iterator and read < events:
        batch = source.get_records(iterator)
        read += sum(r.data.count(b"\n") for r in batch.records)
        iterator = batch.next_iterator if batch.records else None
    return round(read / (time.perf_counter() - t))


def bench_actor(payloads: list[bytes], index: bool = False) -> dict:
    """`index`: the reader also feeds the SQLite FTS5 index (INFO and above), from its own thread."""
    from cali import rayenv

    rayenv.prepare(None)  # before `import ray`: Ray reads how to bind when imported
    import ray

    from cali import bootstrap
    from cali.actors.launch import pipeline_status, start_pipeline, stop_pipeline
    from cali.config import local_settings
    from cali.sources.kinesis import PutEntry
    from cali.stack import StackConfig, down, up

    tmp = Path(tempfile.mkdtemp(prefix="cali-hot-"))
    stack = StackConfig(state_dir=tmp / "stack", kinesis_port=free_port(), aws_port=free_port(), shards=1)
    up(stack)
    try:
        settings = local_settings(kinesis_endpoint=stack.kinesis_endpoint, aws_endpoint=stack.aws_endpoint,
                                  state_dir=tmp / "state", webhook_url="http://127.0.0.1:9/services/T/B/x",
                                  archive={"flush_interval_s": 2.0, "flush_max_records": 10_000},
                                  ray={"namespace": "hot-path", "reader_cpus": 0.5},
                                  index={"backend": "sqlite" if index else "off"})
        source = bootstrap.kinesis_source(settings)
        records = [b"".join(payloads[i:i + AGGREGATE]) for i in range(0, len(payloads), AGGREGATE)]
        t = time.perf_counter()
        for i in range(0, len(records), 500):
            batch = [PutEntry(r, partition_key=str(i + j)) for j, r in enumerate(records[i:i + 500])]
            assert all(r.ok for r in source.put_records(batch))
        load_s = time.perf_counter() - t
        ceiling = emulator_ceiling(source, len(payloads))
        # Exports the stack's credentials for the actors (they never get secrets as arguments).
        from cali.config import export_secrets

        export_secrets(settings, os.environ)
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
                 runtime_env={"env_vars": bootstrap.LOOPBACK_ENV})
        rayenv.check_after_start(ray)
        start_pipeline(settings)
        t0 = time.perf_counter()
        deadline = t0 + 900
        done = 0
        while time.perf_counter() < deadline:
            shards = pipeline_status(settings)["shards"]
            done = sum(s.get("valid", 0) + s.get("dead", 0) + s.get("duplicates", 0) for s in shards)
            if done >= len(payloads):
                break
            time.sleep(0.2)
        dt = time.perf_counter() - t0
        indexed, index_s, last, still = 0, None, -1, 0.0
        deadline = time.perf_counter() + 300  # the index's own wait, however long reading took
        while index and time.perf_counter() < deadline:  # how long the index takes to catch up after reading
            feeds = [s.get("index") or {} for s in pipeline_status(settings)["shards"]]
            indexed = sum(f.get("indexed", 0) for f in feeds)
            if indexed != last:
                last, still = indexed, time.perf_counter()
            elif indexed and all(f.get("queued", 1) == 0 for f in feeds) and time.perf_counter() - still > 3:
                index_s = round(still - t0, 1)
                break
            time.sleep(0.2)
        stop_pipeline(settings)
        return {"events": done, "kinesis_records": len(records), "seconds": round(dt, 1),
                "records_per_s": round(done / dt), "preload_seconds": round(load_s, 1),
                "emulator_read_records_per_s": ceiling,
                **({"indexed": indexed, "index_caught_up_after_s": index_s} if index else {})}
    finally:
        ray.shutdown()
        down(stack)
