"""The analysis app on Ray Serve: batched embeddings, one knowledge-base owner, an analyzer pool, HTTP.

    Api (FastAPI ingress) -> Analyzer (autoscaled pool; async LLM calls, bounded) -> KnowledgeBase
    (owns the Milvus collection; one replica for a Milvus Lite file) -> Embedder (@serve.batch)

The Alerter calls Analyzer.analyze through a DeploymentHandle; people and tools use POST /analyze.
"""

# No `from __future__ import annotations` here: FastAPI resolves the ingress methods' annotations
# inside the Serve replica, where string annotations would not resolve.
import asyncio
import logging
import os
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, SecretStr, ValidationError
from ray import serve
from ray.serve.handle import DeploymentHandle

from cali.analysis.model import Analysis, Hit
from cali.serve.spec import AnalyzerSpec, ApiSpec, EmbedderSpec, KnowledgeSpec, ServeSpec, build_embedder

log = logging.getLogger(__name__)
APP_NAME = "cali-analysis"
api = FastAPI(title="CALI analysis", description="Similar past incidents and a grounded probable cause for a log "
              "record. Log text is redacted before it is embedded or sent to an LLM. POST routes take "
              "`Authorization: Bearer <token>` when the API listens beyond loopback.", version="1")
_bearer = HTTPBearer(auto_error=False, description="The token set in the Api replica (api.token_env or "
                     "api.token_secret_id); required when the HTTP proxy binds beyond loopback.")


@serve.deployment(name="Embedder", ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=128)
class EmbedderDeployment:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.embedder = build_embedder(EmbedderSpec.model_validate(spec))

    # Concurrent requests from every caller are embedded together: one model call per batch. Measured
    # here: with a 5 ms wait, batches averaged 3 texts (callers cannot issue faster); with 50 ms, 18 texts
    # and 1.8x the throughput. 50 ms is small next to an analysis of a few hundred ms.
    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.05)
    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embedder.embed, texts)

    def info(self) -> dict[str, Any]:
        return {"id": self.embedder.id, "dim": self.embedder.dim}


class _RemoteEmbedder:
    """The Embedder port for a store whose vectors come from the Embedder deployment (id and dim only)."""

    def __init__(self, id: str, dim: int) -> None:  # noqa: A002 - the port's attribute name
        self.id, self.dim = id, dim

    def embed(self, texts: list[str]) -> list[list[float]]:
        raise RuntimeError("vectors come from the Embedder deployment; pass vector= to the store")


@serve.deployment(name="KnowledgeBase", num_replicas=1, ray_actor_options={"num_cpus": 0.25},
                  max_ongoing_requests=64)
class KnowledgeBaseDeployment:
    """The one owner of the Milvus collection (a Milvus Lite file admits a single process)."""

    def __init__(self, embedder: DeploymentHandle, spec: dict[str, Any], embedder_spec: dict[str, Any]) -> None:
        from cali.analysis.kb import load_incidents, load_taxonomy, taxonomy_incidents
        from cali.metrics import Recorder
        from cali.vector.milvus import MilvusStore

        self.metrics = Recorder()
        self.spec = KnowledgeSpec.model_validate(spec)
        self.embedder = embedder
        local = build_embedder(EmbedderSpec.model_validate(embedder_spec))  # id/dim; loads nothing yet
        token = os.environ.get(self.spec.token_env)
        self.store = MilvusStore(local, uri=self.spec.uri, collection=self.spec.collection,
                                 token=SecretStr(token) if token else None).open()
        self.taxonomy = load_taxonomy(self.spec.taxonomy)
        if self.spec.load_if_empty and self.store.count() == 0:
            incidents = load_incidents(self.spec.incidents_dir, set(self.taxonomy))
            self.store.upsert(incidents + taxonomy_incidents(self.taxonomy))
            log.info("knowledge base loaded: %d incidents", self.store.count())
        self.store.embedder = _RemoteEmbedder(local.id, local.dim)

    async def search(self, text: str, k: int = 10) -> list[dict[str, Any]]:
        import time

        started = time.monotonic()
        vector = await self.embedder.embed.remote(text)
        hits = await asyncio.to_thread(self.store.search, text, k, vector)
        self.metrics.observe("cali_retrieval_seconds", time.monotonic() - started)
        return [h.model_dump() for h in hits]

    def taxonomy_ids(self) -> list[str]:
        return list(self.taxonomy)

    async def upsert(self, incidents: list[dict[str, Any]], vectors: list[list[float]] | None = None,
                     learn_day: str | None = None, threshold: float = 0.9,
                     embedder_id: str | None = None) -> dict[str, Any]:
        """Writes entries into the collection this replica owns (a Milvus Lite file admits one process).

        Without `learn_day`: upserts the incidents as they are (curated, the console's resolutions);
        vectors are embedded by the Embedder deployment unless given. With it: the daily batch's learned
        clusters of that day, each with the vector of its document text, matched and merged as
        cali.batch.learn says."""
        from cali.analysis.kb import Incident, document_text

        if embedder_id is not None and embedder_id != self.store.embedder.id:
            raise ValueError(f"vectors of embedder {embedder_id} cannot go into {self.store.dim_note()}: "
                             "set CALI_BATCH__EMBEDDER to the analysis app's embedder")
        items = [Incident.model_validate(i) for i in incidents]
        if vectors is None:
            texts = [document_text(i)[:8000] for i in items]
            vectors = list(await asyncio.gather(*[self.embedder.embed.remote(t) for t in texts]))
        if learn_day is None:
            return {"upserted": await asyncio.to_thread(self.store.upsert, items, vectors)}
        from cali.batch.learn import learn

        pairs = list(zip(items, vectors, strict=True))
        return (await asyncio.to_thread(learn, self.store, pairs, learn_day, threshold)).to_dict()

    def count(self) -> int:
        return self.store.count()


@serve.deployment(name="Analyzer", ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=16,
                  autoscaling_config={"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 4})
class AnalyzerDeployment:
    def __init__(self, kb: DeploymentHandle, spec: dict[str, Any], taxonomy: list[str],
                 aws: dict[str, Any] | None = None) -> None:
        from cali.analysis.analyst import Analyst
        from cali.analysis.retrieval import Calibration
        from cali.bootstrap import llm_budget
        from cali.config import AwsSettings

        self.spec = AnalyzerSpec.model_validate(spec)
        self.kb = kb
        self.taxonomy = taxonomy
        self.calibration = Calibration.load()
        llm = None
        if self.spec.llm is not None:
            from cali.llm.openai_chat import OpenAIChat

            key = os.environ.get(self.spec.api_key_env)
            settings = self.spec.llm.model_copy(update={"api_key": SecretStr(key)}) if key else self.spec.llm
            from cali.metrics import MeteredLLM, Recorder

            self.metrics = Recorder()
            llm = MeteredLLM(OpenAIChat.from_settings(settings), self.metrics)
        # The one LLM budget: this deployment is where the LLM is called, for POST /analyze and for the
        # Alerter's follow-ups alike, and every replica counts in the same state-store key.
        budget = llm_budget(self.spec.budget.daily_llm_calls, self.spec.budget.state,
                            AwsSettings.model_validate(aws or {})) if llm is not None else None
        self.analyst = Analyst(llm, taxonomy, timeout_s=self.spec.timeout_s, max_in_flight=self.spec.max_in_flight,
                               redact_ips=self.spec.redact_ips, budget=budget)

    async def analyze(self, record: dict[str, Any], use_llm: bool = True) -> dict[str, Any]:
        """A LogRecord JSON in, the Analysis JSON out; the LLM step degrades, never fails the call."""
        from cali.analysis.retrieval import record_query, retrieval_only_analysis
        from cali.core.records import from_wire
        from cali.core.redaction import redact_record

        rec = redact_record(from_wire(record), ips=self.spec.redact_ips)
        hits = [Hit.model_validate(h) for h in await self.kb.search.remote(record_query(rec), self.calibration.k)]
        retrieval = retrieval_only_analysis(rec, hits, self.calibration, self.taxonomy)
        if not use_llm or self.analyst.llm is None:
            reason = None if self.analyst.llm is None else "llm-not-requested"
            return retrieval.model_copy(update={"degraded_reason": reason}).model_dump(mode="json")
        result: Analysis = await self.analyst.analyze(rec, hits, retrieval)
        left = getattr(self.analyst.budget, "left", None)  # as the last take from the shared budget saw it
        if left is not None:
            self.metrics.set("cali_llm_budget_left", left)
        return result.model_dump(mode="json")


class SearchRequest(BaseModel):
    text: str = Field(min_length=1, max_length=20_000)
    k: int = Field(5, ge=1, le=50)


@serve.deployment(name="Api", ray_actor_options={"num_cpus": 0.1}, max_ongoing_requests=64)
@serve.ingress(api)
class ApiDeployment:
    def __init__(self, analyzer: DeploymentHandle, kb: DeploymentHandle, spec: dict[str, Any] | None = None,
                 aws: dict[str, Any] | None = None) -> None:
        # Helpers come from imports inside the methods: Serve ships this class to the replica by value, and
        # module-level names of this file are not there (a NameError at the first request).
        from cali.serve.auth import api_auth, secrets_manager

        self.analyzer, self.kb = analyzer, kb
        self.spec = ApiSpec.model_validate(spec or {})
        # Raises AuthConfigError when a token is required and none is set: the replica does not start.
        self.auth = api_auth(token_env=self.spec.token_env, token_secret_id=self.spec.token_secret_id,
                             require_token=self.spec.require_token, environ=os.environ,
                             secrets_manager=lambda sid: secrets_manager(sid, aws or {}))

    @api.post("/analyze", response_model=Analysis)
    async def analyze(self, record: dict[str, Any],
                      creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> dict[str, Any]:  # noqa: B008
        """A LogRecord JSON (any alias the shippers use) in, the analysis out."""
        from cali.core.records import from_wire, validation_reason
        from cali.serve.auth import authorize

        authorize(self.auth, creds)
        try:
            from_wire(record)
        except ValidationError as exc:
            raise HTTPException(status_code=422, detail=validation_reason(exc)) from exc
        return await self.analyzer.analyze.remote(record)

    @api.post("/kb/search", response_model=list[Hit])
    async def kb_search(self, req: SearchRequest,
                        creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> list[dict[str, Any]]:  # noqa: B008
        """Hybrid (dense + BM25) search of the knowledge base; hits with their scores, best first."""
        from cali.core.redaction import redact
        from cali.serve.auth import authorize

        authorize(self.auth, creds)
        return await self.kb.search.remote(redact(req.text), req.k)

    @api.get("/healthz")
    async def healthz(self) -> dict[str, Any]:
        """Open to probes: no secrets, no analysis; says whether the POST routes check a token."""
        return {"ok": True, "knowledge_entries": await self.kb.count.remote(),
                "auth": "bearer" if self.auth.enabled else "none"}


def build_app(args: dict[str, Any], overrides: dict[str, dict[str, Any]] | None = None) -> Any:
    """The application builder named in the Serve config (`import_path: cali.serve.app:build_app`).

    `serve run/deploy` apply the config's per-deployment options themselves; `cali serve` passes them
    as `overrides` (name -> options), so both read one file.
    """
    from cali.analysis.kb import load_taxonomy

    spec = ServeSpec.model_validate(args or {})
    opts = overrides or {}

    def dep(d: Any) -> Any:
        return d.options(**opts[d.name]) if d.name in opts else d

    taxonomy = list(load_taxonomy(spec.knowledge.taxonomy))
    embedder = dep(EmbedderDeployment).bind(_dump(spec.embedder))
    kb = dep(KnowledgeBaseDeployment).bind(embedder, _dump(spec.knowledge), _dump(spec.embedder))
    aws = _dump(spec.aws)
    analyzer = dep(AnalyzerDeployment).bind(kb, _dump(spec.analyzer), taxonomy, aws)
    return dep(ApiDeployment).bind(analyzer, kb, _dump(spec.api), aws)


def _dump(model: BaseModel) -> dict[str, Any]:
    """Deployment args without secrets: replicas read those from their environment."""
    return _public(model.model_dump())


def _public(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return None
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value
