"""Where the job writes what it learned: through the Serve app's KnowledgeBase when it runs, else directly.

A Milvus Lite file admits one process, and while the analysis app runs its KnowledgeBase replica owns it;
so the job calls that replica's `upsert` through a DeploymentHandle. Without a Serve app on this Ray
cluster the job opens the store itself (a Milvus server URI, or a Lite file no one holds).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from cali.analysis.kb import Incident
from cali.batch.learn import learn

log = logging.getLogger(__name__)
KB_DEPLOYMENT = "KnowledgeBase"


def serve_kb_handle(app_name: str) -> Any | None:
    """The KnowledgeBase DeploymentHandle of a running `app_name` on the connected Ray, else None."""
    from ray import serve

    try:
        app = serve.status().applications.get(app_name)
    except Exception as exc:  # no Serve on this cluster, or its controller does not answer
        log.info("no Serve status (%s): the job opens the knowledge base itself", exc)
        return None
    if app is None or str(getattr(app.status, "value", app.status)) != "RUNNING":
        return None
    return serve.get_deployment_handle(KB_DEPLOYMENT, app_name=app_name)


def learn_into_kb(candidates: Sequence[Incident], vectors: Sequence[Sequence[float]], day: str, *, uri: str,
                  embedder: Any, threshold: float, app_name: str | None, timeout_s: float = 600.0,
                  token: Any = None) -> dict[str, Any]:
    """Runs cali.batch.learn against the knowledge base, through Serve if it holds it; the outcome as a dict."""
    handle = serve_kb_handle(app_name) if app_name else None
    vecs = [[float(x) for x in v] for v in vectors]
    if handle is not None:
        log.info("learning %d cluster(s) through the Serve app %s", len(candidates), app_name)
        out = handle.upsert.remote([c.model_dump(mode="json") for c in candidates], vecs, learn_day=day,
                                   threshold=threshold, embedder_id=embedder.id).result(timeout_s=timeout_s)
        return out | {"via": f"serve:{app_name}"}
    from cali.vector.milvus import MilvusStore

    with MilvusStore(embedder, uri=uri, token=token) as store:
        outcome = learn(store, list(zip(candidates, vecs, strict=True)), day, threshold)
    return outcome.to_dict() | {"via": uri}
