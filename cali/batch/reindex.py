"""The reindex job: one day of the archive in S3 -> clusters of ERROR/WARN -> learned knowledge in Milvus.

    read_binary_files (pyarrow S3)  ->  flat_map(alertable_rows)  ->  driver: ClusterAggregator
    ->  map_batches(Embed, concurrency=batch.embed_actors)  ->  learn (Serve KnowledgeBase or Milvus)
    ->  reports/dt=<day>/reindex.json

Streaming: objects are read a few at a time and only their ERROR/WARN rows reach the driver, which keeps
one summary per cluster. Runs on whatever Ray the caller connected to (jobs/reindex.py, `cali batch run`).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from cali.analysis.kb import DaySeen, Incident, document_text, learned_incident
from cali.batch.clusters import Cluster, ClusterAggregator, alertable_rows
from cali.batch.quality import day_prefix
from cali.config import Settings

log = logging.getLogger(__name__)
REPORT_NAME = "reindex.json"
EMBED_BATCH = 64


def s3_filesystem(settings: Settings) -> Any:
    """pyarrow's S3 filesystem for the archive; the endpoint override points it at the local stack."""
    from pyarrow import fs

    aws = settings.aws
    kwargs: dict[str, Any] = {"region": aws.region}
    if aws.endpoint_url:
        url = urlparse(aws.endpoint_url)
        kwargs |= {"endpoint_override": url.netloc, "scheme": url.scheme or "http"}
    if aws.access_key_id and aws.secret_access_key:
        kwargs |= {"access_key": aws.access_key_id.get_secret_value(),
                   "secret_key": aws.secret_access_key.get_secret_value()}
    return fs.S3FileSystem(**kwargs)


def _extract(row: dict[str, Any]) -> list[dict[str, Any]]:
    return alertable_rows(row["path"], row["bytes"])


class Embed:
    """An embedding actor of the pool: one Embedder (chosen from cali's table by name) per actor."""

    def __init__(self, kind: str) -> None:
        from cali.analysis.commands import EMBEDDERS

        self.embedder = EMBEDDERS[kind]()
        self.embedder.embed(["warm-up"])  # load the model when the actor starts, not inside the first batch

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        started = time.perf_counter()
        vectors = self.embedder.embed([str(t) for t in batch["text"]])
        per_text = (time.perf_counter() - started) / max(1, len(vectors))  # model time, without its loading
        return {"id": batch["id"], "vector": np.asarray(vectors, dtype=np.float32),
                "seconds": np.full(len(vectors), per_text)}


def embedder_for(kind: str) -> Any:
    """The driver's embedder: id and dim only (MiniLM loads its model on first use, which never comes here)."""
    from cali.analysis.commands import EMBEDDERS

    return EMBEDDERS[kind]()


def read_clusters(settings: Settings, day: str, keys: list[str]) -> ClusterAggregator:
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # the job's own miner must see records in the same order
    ctx.enable_progress_bars = False
    agg = ClusterAggregator()
    if not keys:
        return agg
    bucket = settings.archive.bucket
    cpus = settings.batch.task_cpus
    ds = ray.data.read_binary_files([f"{bucket}/{k}" for k in keys], filesystem=s3_filesystem(settings),
                                    include_paths=True, num_cpus=cpus)
    for batch in ds.flat_map(_extract, num_cpus=cpus).iter_batches(batch_size=4096, batch_format="pyarrow"):
        agg.add_rows(batch.to_pylist())
    return agg


def embed(settings: Settings, texts: dict[str, str]) -> tuple[dict[str, list[float]], float]:
    """One vector per text, computed by an actor pool of `batch.embed_actors` embedders; and the seconds the
    embedders spent in the model (the wall time also holds the actors' start and the model's loading)."""
    import ray

    if not texts:
        return {}, 0.0
    b = settings.batch
    ds = ray.data.from_items([{"id": k, "text": v} for k, v in texts.items()])
    ds = ds.map_batches(Embed, fn_constructor_kwargs={"kind": b.embedder}, batch_size=EMBED_BATCH,
                        concurrency=b.embed_actors, num_cpus=b.task_cpus, batch_format="numpy")
    out: dict[str, list[float]] = {}
    model_s = 0.0
    for batch in ds.iter_batches(batch_size=EMBED_BATCH, batch_format="numpy"):
        model_s += float(batch["seconds"].sum())
        for i, v in zip(batch["id"], batch["vector"], strict=True):
            out[str(i)] = v.tolist()
    return out, model_s


def candidate(cluster: Cluster, day: str) -> Incident:
    seen = DaySeen(count=cluster.count, services=[cluster.service], first=cluster.first, last=cluster.last)
    severity = {"FATAL": "critical", "ERROR": "high"}.get(cluster.level, "medium")
    return learned_incident(fingerprint=cluster.fingerprint, title=cluster.title(),
                            symptoms=[cluster.representative(), *cluster.sample_lines()[1:]], day=day, seen=seen,
                            severity=severity)


def run_reindex(settings: Settings, day: str, kb_token: Any = None) -> dict[str, Any]:
    """The whole job for one day on the connected Ray; writes and returns the reindex summary.

    `kb_token`: a Milvus server's token (SecretStr), when the job opens the knowledge base itself."""
    from cali import bootstrap
    from cali.batch.knowledge import learn_into_kb

    started = time.perf_counter()
    keys = sorted(bootstrap.archive(settings).list_keys(day_prefix("raw", day)))
    agg = read_clusters(settings, day, keys)
    read_s = time.perf_counter() - started
    clusters = agg.clusters()
    candidates = [candidate(c, day) for c in clusters]
    t = time.perf_counter()
    vectors, model_s = embed(settings, {c.id: document_text(c) for c in candidates})
    embed_s = time.perf_counter() - t
    t = time.perf_counter()
    b = settings.batch
    outcome = learn_into_kb(candidates, [vectors[c.id] for c in candidates], day, uri=settings.analysis.kb_uri,
                            embedder=embedder_for(b.embedder), threshold=b.match_threshold,
                            app_name=settings.analysis.app_name, token=kb_token)
    learn_s = time.perf_counter() - t
    counts = agg.counts
    entry_of = {c["fingerprint"]: c for c in outcome.get("clusters", [])}
    summary = {
        "day": day, "finished_at": datetime.now(UTC).isoformat(),
        "objects": counts.files, "records": counts.lines, "alertable": counts.alertable, "unreadable": counts.bad,
        "clusters": len(clusters),
        "per_service_hour": [{"service": s, "hour": h, "level": lv, "records": n}
                             for (s, h, lv), n in sorted(counts.per_hour.items())],
        "top_clusters": [c.summary() | {"knowledge": entry_of.get(c.fingerprint)}
                         for c in clusters[:b.top_clusters]],
        "knowledge": {k: v for k, v in outcome.items() if k != "clusters"},
        "seconds": {"read_and_group": round(read_s, 3), "embed": round(embed_s, 3), "embed_model": round(model_s, 3),
                    "learn": round(learn_s, 3), "total": round(time.perf_counter() - started, 3)},
    }
    summary["rates"] = {"records_per_s": round(counts.lines / read_s, 1) if read_s else None,
                        "clusters_embedded_per_s": round(len(clusters) / embed_s, 1) if embed_s else None,
                        "clusters_embedded_per_model_s": round(len(clusters) / model_s, 1) if model_s else None}
    summary["report"] = bootstrap.reports(settings).put_json(day, REPORT_NAME, summary)
    log.info("reindex %s: %d records, %d alertable, %d clusters, learned %s", day, counts.lines, counts.alertable,
             len(clusters), outcome.get("learned"))
    return summary
