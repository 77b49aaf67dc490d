"""`cali analyze` in one process: redact, retrieve from Milvus, optionally ask the LLM; no Ray needed."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cali.analysis.commands import DEFAULT_KB_DIR, built_store, load_taxonomy, taxonomy_path
from cali.analysis.retrieval import Calibration, record_query, retrieval_only_analysis
from cali.config import Settings
from cali.core.records import LogRecord, from_wire, validation_reason
from cali.core.redaction import redact_record


def parse_input(text: str, service: str) -> LogRecord:
    """A LogRecord JSON object (any shipper alias), or plain text taken as one ERROR message."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        try:
            return from_wire(obj)
        except ValidationError as exc:
            raise ValueError(f"not a valid LogRecord: {validation_reason(exc)}") from exc
    return LogRecord(timestamp=datetime.now(UTC), level="ERROR", service=service, message=text.strip())


def analyze_text(text: str, settings: Settings, *, db: Path | str | None = None, service: str = "cli",
                 embedder: Any = None) -> dict[str, Any]:
    from cali.embed.minilm import MiniLMEmbedder

    record = redact_record(parse_input(text, service))
    path = taxonomy_path()
    taxonomy = load_taxonomy(path) if path else {}
    calibration = Calibration.load()
    uri = str(db or settings.analysis.kb_uri)
    embedder = embedder or MiniLMEmbedder()
    if "://" in uri:  # a Milvus server: Path() would fold its "//"
        from cali.vector.milvus import MilvusStore

        with MilvusStore(embedder, uri=uri) as store:
            hits = store.search(record_query(record), k=calibration.k)
    else:
        with built_store(Path(uri) if Path(uri).exists() else None, embedder, DEFAULT_KB_DIR, taxonomy) as store:
            hits = store.search(record_query(record), k=calibration.k)
    analysis = retrieval_only_analysis(record, hits, calibration, list(taxonomy))
    if settings.analysis.llm is not None:
        from cali.analysis.analyst import Analyst
        from cali.llm.openai_chat import OpenAIChat

        analyst = Analyst(OpenAIChat.from_settings(settings.analysis.llm), taxonomy,
                          timeout_s=settings.analysis.timeout_s)
        analysis = asyncio.run(analyst.analyze(record, hits, analysis))
    return analysis.model_dump(mode="json")
