"""The daily batch on a big day: Great Expectations on N archived records, and the reindex job (Ray Data) on
the same day: records/s read, clusters/s embedded, peak memory of the driver and of every Ray process.

    python benchmarks/batch.py --records 1000000 [--records 3000000] [--embedder minilm] [--skip-gx]

The day is generated once per size under --cache (gzip objects as the readers write them, about 5 %
ERROR/WARN) and put into a moto S3 of the benchmark's own; prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

DAY = "2026-11-26"


def generate(cache: Path, records: int) -> Path:
    from cali.batch.synth import write_day

    out = cache / f"{records}"
    done = out / ".done"
    if done.exists():
        return out

    def put(key: str, body: bytes) -> None:
        path = out / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    started = time.perf_counter()
    # incidents every 30 min on a day of this size: about 5 % of records are ERROR/WARN
    counts = write_day(put, DAY, records, seed=7, dlq_share=0.0002)
    done.write_text(json.dumps(counts))
    print(json.dumps({"generated": counts, "seconds": round(time.perf_counter() - started, 1)}), flush=True)
    return out


def upload(s3, bucket: str, root: Path) -> int:
    from concurrent.futures import ThreadPoolExecutor

    files = [p for p in root.rglob("*.jsonl.gz")]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda p: s3.put_object(Bucket=bucket, Key=str(p.relative_to(root)), Body=p.read_bytes()),
                      files))
    return len(files)


class PeakRss:
    """Samples the RSS of this process and of all its descendants (the local Ray's processes) every 0.2 s."""

    def __init__(self) -> None:
        import psutil

        self.me = psutil.Process()
        self.peak_driver = self.peak_total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                driver = self.me.memory_info().rss
                total = driver + sum(c.memory_info().rss for c in self.me.children(recursive=True))
            except Exception:  # a process ended between the listing and the read
                continue
            self.peak_driver = max(self.peak_driver, driver)
            self.peak_total = max(self.peak_total, total)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, action="append", help="records in the day (repeatable)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/cali-bench-archive"))
    parser.add_argument("--embedder", default="hashing", choices=["hashing", "minilm"])
    parser.add_argument("--embed-actors", type=int, default=1)
    parser.add_argument("--skip-gx", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.update({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
                       "CALI_AWS__ACCESS_KEY_ID": "testing", "CALI_AWS__SECRET_ACCESS_KEY": "testing"})
    import tempfile

    import ray

    from cali import bootstrap
    from cali.batch.quality import check_day
    from cali.batch.reindex import run_reindex
    from cali.config import local_settings
    from cali.stack import StackConfig, boto_client, down, up
    from cali.stack.procs import free_port

    tmp = Path(tempfile.mkdtemp(prefix="cali-bench-batch-"))
    stack = StackConfig(state_dir=tmp / "stack", kinesis_port=free_port(), aws_port=free_port())
    up(stack)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}})
    try:
        s3 = boto_client("s3", stack.aws_endpoint, stack.region)
        for n in args.records or [1_000_000]:
            root = generate(args.cache, n)
            bucket = f"bench-{n}"
            s3.create_bucket(Bucket=bucket)
            objects = upload(s3, bucket, root)
            settings = local_settings(kinesis_endpoint=stack.kinesis_endpoint, aws_endpoint=stack.aws_endpoint,
                                      state_dir=tmp / "state", webhook_url="http://127.0.0.1:9/unused", bucket=bucket,
                                      analysis={"kb_uri": str(tmp / f"kb-{n}.db"), "app_name": "none"},
                                      batch={"embedder": args.embedder, "embed_actors": args.embed_actors})
            if not args.skip_gx:
                started = time.perf_counter()
                with PeakRss() as mem:
                    quality = check_day(bootstrap.archive(settings), DAY)
                print(json.dumps({"measure": "great_expectations", "records": quality["records"], "objects": objects,
                                  "seconds": round(time.perf_counter() - started, 1), "phases": quality["seconds"],
                                  "failures": quality["failures"], "peak_rss_mb": round(mem.peak_driver / 2**20)}),
                      flush=True)
            started = time.perf_counter()
            with PeakRss() as mem:
                summary = run_reindex(settings, DAY)
            print(json.dumps({"measure": "reindex", "records": summary["records"], "alertable": summary["alertable"],
                              "clusters": summary["clusters"], "learned": summary["knowledge"]["learned"],
                              "embedder": args.embedder, "seconds": round(time.perf_counter() - started, 1),
                              "phases": summary["seconds"], "rates": summary["rates"],
                              "peak_driver_rss_mb": round(mem.peak_driver / 2**20),
                              "peak_ray_total_rss_mb": round(mem.peak_total / 2**20)}), flush=True)
    finally:
        ray.shutdown()
        down(stack)


if __name__ == "__main__":
    main()
