"""Ray Serve figures: MiniLM embedding throughput with and without @serve.batch, and POST /analyze
latency/throughput under a bounded local load (loopback HTTP). Prints figures; asserts nothing."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cali import rayenv

rayenv.prepare(None)  # an entry point: before `import ray`, which reads how Ray binds

from ray import serve  # noqa: E402

from cali.bootstrap import LOOPBACK_ENV  # noqa: E402
from cali.serve.spec import EmbedderSpec, build_embedder  # noqa: E402
from cali.stack.procs import free_port  # noqa: E402

TEXTS = [f"java.sql.SQLTransientConnectionException: HikariPool-{i} - Connection is not available, request timed "
         f"out after {1000 + i}ms while reserving order {i}" for i in range(2000)]


@serve.deployment(name="EmbedderUnbatched", ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=128)
class EmbedderUnbatched:
    """The same model, one model call per request: the baseline for @serve.batch."""

    def __init__(self) -> None:
        self.embedder = build_embedder(EmbedderSpec())

    async def embed(self, text: str) -> list[float]:
        return (await asyncio.to_thread(self.embedder.embed, [text]))[0]




async def _fire(handle: Any, texts: list[str], concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one(t: str) -> None:
        async with sem:
            await handle.embed.remote(t)

    await one(texts[0])  # warm-up: the model loads on the first call
    start = time.perf_counter()
    await asyncio.gather(*(one(t) for t in texts))
    return len(texts) / (time.perf_counter() - start)


def embedding_throughput(n: int, concurrency: int) -> dict[str, float]:
    from cali.serve.app import EmbedderDeployment

    batched = serve.run(EmbedderDeployment.bind({"kind": "minilm"}), name="emb-batched", route_prefix=None)
    unbatched = serve.run(EmbedderUnbatched.bind(), name="emb-unbatched", route_prefix=None)
    out = {"batched_texts_per_s": asyncio.run(_fire(batched, TEXTS[:n], concurrency)),
           "unbatched_texts_per_s": asyncio.run(_fire(unbatched, TEXTS[:n], concurrency))}
    serve.delete("emb-batched")
    serve.delete("emb-unbatched")
    return {k: round(v, 1) for k, v in out.items()}


def analyze_load(n: int, concurrency: int, port: int) -> dict[str, float]:
    from cali.serve.command import deploy, load_config

    db = os.path.join(tempfile.mkdtemp(prefix="cali-serve-bench-"), "kb.db")
    url = deploy(load_config(), port=port, args_update={"knowledge": {"uri": db}})
    record = {"time": "2026-11-26T12:00:00Z", "level": "ERROR", "service": "orders-api",
              "message": "Request failed\nCaused by: java.net.UnknownHostException: payments.internal"}

    def call(_: int) -> float:
        req = urllib.request.Request(f"{url}/analyze", data=json.dumps(record).encode(),
                                     headers={"Content-Type": "application/json"})
        t = time.perf_counter()
        with urllib.request.urlopen(req, timeout=120) as resp:
            resp.read()
        return time.perf_counter() - t

    call(0)  # warm-up
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        lat = sorted(pool.map(call, range(n)))
    wall = time.perf_counter() - start
    q = statistics.quantiles(lat, n=100)
    return {"requests": n, "concurrency": concurrency, "req_per_s": round(n / wall, 1),
            "p50_ms": round(q[49] * 1000), "p99_ms": round(q[98] * 1000)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--texts", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    a = ap.parse_args()
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": LOOPBACK_ENV})
    rayenv.check_after_start(ray)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        emb = embedding_throughput(a.texts, concurrency=64)
        print(f"embedding (MiniLM in one replica, 64 concurrent callers): {emb}", flush=True)
        load = analyze_load(a.requests, a.concurrency, port)
        print(f"POST /analyze (retrieval-only, MiniLM + Milvus Lite): {load}", flush=True)
    finally:
        serve.shutdown()
        ray.shutdown()


if __name__ == "__main__":
    main()
