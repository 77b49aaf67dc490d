"""End-to-end alert latency: a line written to a log file -> the Slack webhook receiving the alert.

Path: file -> CALI shipper (tail, multiline join, PutRecords) -> kinesalite -> ShardReader actor
(GetRecords poll) -> IncidentTracker actor -> outbox (SQLite) -> Alerter actor -> webhook (a
loopback Slack-compatible receiver). Every sample is a distinct incident (random words), so none
is throttled. Background INFO traffic on the same file, as in production, ends each error event
as soon as the next line arrives; --background-rate 0 measures the worst case (the joiner's idle flush).
Prints p50/p90/p99/max; asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from cali.stack.procs import free_port


def _line(level: str, message: str) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return f"{now} {level:>5} [orders-api,,] 1 --- [nio-8080-exec-1] c.a.orders.OrderController : {message}\n"


def _words(rng: random.Random, n: int = 5) -> str:
    return " ".join("".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 9))) for _ in range(n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--interval", type=float, default=0.25, help="seconds between error lines")
    ap.add_argument("--background-rate", type=float, default=50.0, help="INFO lines/s on the same file")
    ap.add_argument("--flush-after", type=float, default=0.5, help="multiline joiner idle flush, seconds")
    a = ap.parse_args()
    from cali import rayenv

    rayenv.prepare(None)  # before `import ray`: Ray reads how to bind when imported
    import ray

    from cali import bootstrap
    from cali.actors.launch import pipeline_status, start_pipeline, stop_pipeline
    from cali.config import local_settings
    from cali.core.parsing import Source
    from cali.notify.local_receiver import LocalSlack
    from cali.ship.shipper import Shipper
    from cali.stack import StackConfig, down, up

    tmp = Path(tempfile.mkdtemp(prefix="cali-latency-"))
    stack = StackConfig(state_dir=tmp / "stack", kinesis_port=free_port(), aws_port=free_port())
    up(stack)
    slack = LocalSlack(port=0).start()
    settings = local_settings(kinesis_endpoint=stack.kinesis_endpoint, aws_endpoint=stack.aws_endpoint,
                              state_dir=tmp / "state", webhook_url=slack.url,
                              ray={"namespace": "latency", "reader_cpus": 0.1, "tracker_cpus": 0.1,
                                   "alerter_cpus": 0.05})
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": bootstrap.LOOPBACK_ENV})
    rayenv.check_after_start(ray)
    stop = threading.Event()
    try:
        start_pipeline(settings)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if sum(s["state"] == "reading" for s in pipeline_status(settings)["shards"]) == stack.shards:
                break
            time.sleep(0.2)
        log = tmp / "orders-api.log"
        log.touch()
        shipper = Shipper([Source("orders-api", "logback", str(log))], bootstrap.kinesis_source(settings),
                          tmp / "offsets.json", host="bench", flush_after_s=a.flush_after)
        threading.Thread(target=shipper.run, args=(stop,), daemon=True).start()
        rng = random.Random(1)
        written: dict[str, float] = {}
        lock = threading.Lock()  # two writers, one file handle: whole lines only
        with log.open("a", buffering=1) as fh:
            def background() -> None:
                bg_rng = random.Random(2)
                n = 0
                while not stop.is_set() and a.background_rate > 0:
                    with lock:
                        fh.write(_line("INFO", f"GET /orders/{n} 200 in {bg_rng.randint(1, 90)}ms"))
                    n += 1
                    time.sleep(1 / a.background_rate)

            bg = threading.Thread(target=background, daemon=True)
            bg.start()
            for _ in range(a.samples):
                marker = _words(rng)
                with lock:
                    written[marker] = time.time()
                    fh.write(_line("ERROR", f"Checkout {marker} failed"))
                time.sleep(a.interval)
            wait_until = time.monotonic() + 30
            while time.monotonic() < wait_until and len(slack.received) < a.samples:
                time.sleep(0.1)
            stop.set()
            bg.join()
        latencies = []
        for msg in slack.messages():
            for marker, t0 in written.items():
                if marker in (msg.get("text") or ""):
                    latencies.append(msg["received_at"] - t0)
                    break
        latencies.sort()
        q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else latencies * 99
        print(f"samples {len(latencies)}/{a.samples}, background {a.background_rate}/s, flush_after {a.flush_after}s")
        print(f"alert latency p50 {q[49]*1000:.0f} ms, p90 {q[89]*1000:.0f} ms, p99 {q[98]*1000:.0f} ms, "
              f"max {latencies[-1]*1000:.0f} ms")
        stop_pipeline(settings)
        shipper.close()
    finally:
        stop.set()
        ray.shutdown()
        slack.stop()
        down(stack)


if __name__ == "__main__":
    main()
