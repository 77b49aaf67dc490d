"""Retrieval latency (p50/p99) at 1k and 100k knowledge entries, and MiniLM embedding throughput."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from cali.analysis.kb import Incident, load_incidents
from cali.analysis.retrieval import focus_text
from cali.embed.minilm import MiniLMEmbedder
from cali.vector.milvus import MilvusStore

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"
QUERIES = [
    "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, request timed out",
    "OSError: [Errno 28] No space left on device: '/var/lib/app/cache'",
    "dial tcp: lookup payments.internal on 10.0.0.10:53: no such host",
    "Caused by: javax.net.ssl.SSLHandshakeException: PKIX path building failed",
    "redis.exceptions.ConnectionError: Error 111 connecting to cache:6379. Connection refused.",
    "AttributeError: 'NoneType' object has no attribute 'get'",
    "Back-off restarting failed container api in pod api-7d9f",
    "botocore.exceptions.ClientError: An error occurred (ThrottlingException): Rate exceeded",
]


def perturbed(base: list[Incident], n: int, seed: int = 7) -> list[Incident]:
    """`n` filler incidents: KB texts with shuffled ids, numbers and service names (so BM25 sees real words)."""
    rng = random.Random(seed)
    services = ["orders", "billing", "ledger", "search", "auth", "catalog", "payments", "shipping"]
    out = []
    for i in range(n):
        src = base[i % len(base)]
        svc = rng.choice(services) + f"-{rng.randint(1, 99)}"
        sym = [re.sub(r"\d+", lambda _: str(rng.randint(0, 99999)), s) for s in src.symptoms[:2]]
        out.append(src.model_copy(update={"id": f"inc-f{i:06d}", "title": f"{svc}: {src.title}", "symptoms": sym}))
    return out


def random_unit_vectors(n: int, dim: int, seed: int = 11) -> list[list[float]]:
    import numpy as np

    v = np.random.default_rng(seed).standard_normal((n, dim)).astype("float32")
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.tolist()


def latency(store: MilvusStore, rounds: int) -> dict[str, float]:
    texts = [focus_text(q) for q in QUERIES]
    store.embedder.embed(texts)  # warm-up
    for t in texts:
        store.search(t, k=10)
    samples = []
    for r in range(rounds):
        t = texts[r % len(texts)]
        start = time.perf_counter()
        store.search(t, k=10)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 1), "p99_ms": round(samples[int(0.99 * (len(samples) - 1))], 1),
            "n": len(samples)}


def throughput(embedder: MiniLMEmbedder, texts: list[str], batch: int) -> float:
    embedder.batch_size = batch
    embedder.embed(texts[:batch])
    n = max(64, batch * 8)
    sample = (texts * (n // len(texts) + 1))[:n]
    start = time.perf_counter()
    for i in range(0, n, batch):
        embedder.embed(sample[i:i + batch])
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1000,100000")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--no-docs", action="store_true", help="print only; do not update docs/benchmarks.md")
    args = ap.parse_args()
    embedder = MiniLMEmbedder()
    base = load_incidents(REPO / "knowledge" / "incidents")
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="cali-bench-") as tmp:
        for size in [int(s) for s in args.sizes.split(",")]:
            store = MilvusStore(embedder, uri=os.path.join(tmp, f"kb{size}.db")).open(rebuild=True)
            store.upsert(base)  # the real KB with real MiniLM vectors
            filler = perturbed(base, size - len(base))
            start = time.perf_counter()
            store.upsert(filler, vectors=random_unit_vectors(len(filler), embedder.dim), batch=2000)
            load_s = time.perf_counter() - start
            results[f"latency_{size}"] = latency(store, args.rounds) | {"entries": store.count(),
                                                                          "filler_insert_s": round(load_s, 1)}
            print(f"{size:>7} entries: {results[f'latency_{size}']}", flush=True)
            store.close()
    texts = [d for inc in base for d in inc.symptoms][:256]
    for b in (1, 8, 32):
        results[f"embed_bs{b}"] = round(throughput(embedder, texts, b), 1)
        print(f"MiniLM batch {b}: {results[f'embed_bs{b}']} texts/s", flush=True)
    print(json.dumps(results))
    if not args.no_docs:
        write_docs(results)


def write_docs(r: dict) -> None:
    sizes = sorted(int(k.split("_")[1]) for k in r if k.startswith("latency_"))
    cpu = platform.processor() or platform.machine()
    lines = ["## Retrieval", "",
             f"`python benchmarks/retrieval.py`, {date.today().isoformat()}, {cpu}, {os.cpu_count()} cores "
             "(shared with other jobs, so noisy). Milvus Lite file in a temp dir, hybrid search = one dense "
             "COSINE search + one BM25 full-text search (50 candidates each) + fusion, k=10, query embedding "
             "included. The real KB (curated incidents, real MiniLM vectors) plus filler entries: KB texts "
             "with perturbed numbers/services and **random unit vectors** (embedding 100k texts with MiniLM "
             "on 2 cores would take about an hour); queries are real alert texts embedded with MiniLM.", "",
             "| entries | p50 ms | p99 ms | queries | filler insert s |", "|---|---|---|---|---|"]
    for s in sizes:
        x = r[f"latency_{s}"]
        lines.append(f"| {x['entries']:,} | {x['p50_ms']} | {x['p99_ms']} | {x['n']} | {x['filler_insert_s']} |")
    lines += ["", "MiniLM (all-MiniLM-L6-v2, CPU, max 256 tokens) embedding throughput on KB symptom texts:", "",
              "| batch size | texts/s |", "|---|---|"]
    lines += [f"| {b} | {r[f'embed_bs{b}']} |" for b in (1, 8, 32)]
    section = "\n".join(lines) + "\n"
    text = DOCS.read_text(encoding="utf-8") if DOCS.is_file() else "# Benchmarks\n"
    m = re.search(r"^## Retrieval\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
    text = text[:m.start()] + section + ("\n" + text[m.end():] if text[m.end():] else "") if m else \
        text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text, encoding="utf-8")
    print(f"updated {DOCS}")


if __name__ == "__main__":
    main()
