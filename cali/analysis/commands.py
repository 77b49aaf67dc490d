"""`cali kb ...` and `cali eval rag`: build and query the knowledge base, score retrieval on eval cases."""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cali.analysis.kb import (
    Incident,
    KnowledgeError,
    load_incidents,
    load_taxonomy,
    resolved_incident,
    taxonomy_incidents,
)
from cali.analysis.retrieval import CALIBRATION_PATH, Calibration, rank_record
from cali.core.records import LogRecord

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_KB_DIR = Path("knowledge/incidents")
DEFAULT_DB = Path("./data/kb.db")

kb_app = typer.Typer(help="The incident knowledge base (Milvus).", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate the AI analysis on case files.", no_args_is_help=True)
console = Console()


def _minilm() -> Any:
    from cali.embed.minilm import MiniLMEmbedder

    return MiniLMEmbedder()


def _hashing() -> Any:
    from cali.embed.hashing import HashingEmbedder

    return HashingEmbedder()


# Chosen by name from this dict only (the OpenAI adapter needs settings: the composition root builds it).
EMBEDDERS: dict[str, Callable[[], Any]] = {"minilm": _minilm, "hashing": _hashing}


def taxonomy_path() -> Path | None:
    """$CALI_TAXONOMY, else knowledge/taxonomy.tsv, else ../shared/eval/taxonomy.tsv (as knowledge/check.py)."""
    candidates = [os.environ.get("CALI_TAXONOMY"), REPO_ROOT / "knowledge" / "taxonomy.tsv",
                  REPO_ROOT.parent / "shared" / "eval" / "taxonomy.tsv"]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def load_documents(kb_dir: Path, taxonomy: dict[str, str]) -> list[Incident]:
    """Curated incidents plus one pseudo-incident per taxonomy description (category wording)."""
    incidents = load_incidents(kb_dir, set(taxonomy) if taxonomy else None)
    return incidents + taxonomy_incidents(taxonomy)


def open_store(db: Path, embedder: Any, rebuild: bool = False) -> Any:
    from cali.vector.milvus import MilvusStore

    db.parent.mkdir(parents=True, exist_ok=True) if "://" not in str(db) else None
    return MilvusStore(embedder, uri=str(db)).open(rebuild=rebuild)


@contextmanager
def built_store(db: Path | None, embedder: Any, kb_dir: Path, taxonomy: dict[str, str]) -> Iterator[Any]:
    """The store at `db`, or a temporary Milvus Lite file built from `kb_dir` (removed afterwards)."""
    if db is not None:
        store = open_store(db, embedder)
        try:
            yield store
        finally:
            store.close()
        return
    with tempfile.TemporaryDirectory(prefix="cali-kb-") as tmp:
        store = open_store(Path(tmp) / "kb.db", embedder, rebuild=True)
        try:
            store.upsert(load_documents(kb_dir, taxonomy))
            yield store
        finally:
            store.close()


@kb_app.command("load")
def kb_load(kb_dir: Path = typer.Option(DEFAULT_KB_DIR, "--dir", help="Folder of incident YAML files."),
            db: Path = typer.Option(DEFAULT_DB, help="Milvus Lite file, or a server URI http://host:19530."),
            rebuild: bool = typer.Option(False, help="Drop and recreate the collection (new embedder)."),
            embedder: str = typer.Option("minilm", help=f"One of {', '.join(EMBEDDERS)}.")) -> None:
    """Validate the knowledge base and upsert it (plus the taxonomy descriptions) into the vector store."""
    tax = _taxonomy()
    try:
        docs = load_documents(kb_dir, tax)
    except KnowledgeError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    with _store_or_exit(db, embedder, rebuild) as store:
        n = store.upsert(docs)
        console.print(f"upserted {n} documents ({len(docs) - len(tax)} incidents, {len(tax)} taxonomy "
                      f"descriptions) into {db}; collection holds {store.count()}")


@kb_app.command("search")
def kb_search(text: str = typer.Argument(..., help="An error message or log excerpt."),
              k: int = typer.Option(5, "-k", help="How many hits."),
              db: Path = typer.Option(DEFAULT_DB), as_json: bool = typer.Option(False, "--json"),
              embedder: str = typer.Option("minilm")) -> None:
    """Hybrid (dense + BM25) search of the knowledge base."""
    from cali.analysis.retrieval import focus_text

    with _store_or_exit(db, embedder) as store:
        hits = store.search(focus_text(text), k=k)
    if as_json:
        for h in hits:
            print(h.model_dump_json())
        return
    table = Table("id", "category", "score", "cosine", "bm25", "title")
    for h in hits:
        table.add_row(h.id, h.category, f"{h.score:.3f}", f"{h.dense_score or 0:.3f}", f"{h.lexical_score or 0:.2f}",
                      h.title[:80])
    console.print(table)


@kb_app.command("add")
def kb_add(title: str = typer.Option(...), category: str = typer.Option(...),
           root_cause: str = typer.Option(..., "--root-cause"),
           remediation: list[str] = typer.Option(..., help="A remediation step (repeatable)."),
           symptom: list[str] = typer.Option(..., help="A log excerpt of the incident (repeatable)."),
           fingerprint: str = typer.Option("", help="Fingerprint of the alert this incident resolved."),
           db: Path = typer.Option(DEFAULT_DB), embedder: str = typer.Option("minilm")) -> None:
    """Add a resolved incident as knowledge (source="resolved"): the next similar alert finds it."""
    tax = _taxonomy()
    if tax and category not in tax:
        console.print(f"[red]unknown category {category!r}[/red]; one of: {', '.join(tax)}")
        raise typer.Exit(2)
    inc = resolved_incident(title=title, category=category, root_cause=root_cause, remediation=remediation,
                            symptoms=symptom, fingerprint=fingerprint)
    with _store_or_exit(db, embedder) as store:
        store.upsert([inc])
    console.print(f"added {inc.id} ({category}) to {db}")


@eval_app.command("rag")
def eval_rag(cases: Path = typer.Option(..., help="JSONL eval cases (see shared eval README)."),
             predictions_out: Path | None = typer.Option(None, "--predictions-out"),
             db: Path | None = typer.Option(None, help="Existing KB; default: a temp Milvus Lite built from --dir."),
             kb_dir: Path = typer.Option(DEFAULT_KB_DIR, "--dir"),
             embedder: str = typer.Option("minilm"),
             calibrate: bool = typer.Option(False, help=f"Choose the abstention threshold on these cases and "
                                            f"write {CALIBRATION_PATH.name} (max 5% false abstention)."),
             llm: bool = typer.Option(False, help="Reserved for the LLM mode; this command runs retrieval-only.")
             ) -> None:
    """Top-1/top-3 accuracy and abstention of retrieval-only analysis on labelled cases."""
    if llm:
        console.print("[yellow]--llm is not wired here yet; running retrieval-only[/yellow]")
    rows = read_cases(cases)
    tax = _taxonomy()
    calibration = Calibration.load()
    with built_store(db, EMBEDDERS[embedder](), kb_dir, tax) as store:
        preds = predict_cases(store, rows, calibration, list(tax))
    if calibrate:
        calibration = write_calibration(rows, preds, calibration, cases_name=cases.name)
        preds = [apply_threshold(p, calibration.threshold) for p in preds]
    metrics = score(rows, preds)
    if predictions_out:
        predictions_out.parent.mkdir(parents=True, exist_ok=True)
        with predictions_out.open("w", encoding="utf-8") as fh:
            for p in preds:
                fh.write(json.dumps({k: p[k] for k in ("id", "predicted_category", "top_categories", "abstained",
                                                       "confidence")}) + "\n")
    table = Table("id", "expected", "predicted", "top-3", "conf", "ok")
    for c, p in zip(rows, preds, strict=True):
        exp = c.get("expected_category")
        ok = (p["predicted_category"] == exp) if exp else p["abstained"]
        table.add_row(c["id"], str(exp), str(p["predicted_category"]), ", ".join(p["top_categories"][:3]),
                      f"{p['confidence']:.3f}", "[green]yes[/green]" if ok else "[red]no[/red]")
    console.print(table)
    print(json.dumps(metrics))


def read_cases(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        console.print(f"[red]no such case file {path}[/red]")
        raise typer.Exit(2)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def predict_cases(store: Any, rows: Sequence[dict[str, Any]], calibration: Calibration,
                  taxonomy: Sequence[str]) -> list[dict[str, Any]]:
    preds = []
    for case in rows:
        ranking, _ = rank_record(store, LogRecord.model_validate(case["record"]), calibration, taxonomy)
        preds.append({"id": case["id"], "predicted_category": ranking.category,
                      "top_categories": ranking.top_categories[:max(3, min(5, len(ranking.top_categories)))],
                      "abstained": ranking.abstained, "confidence": ranking.confidence})
    return preds


def apply_threshold(pred: dict[str, Any], threshold: float) -> dict[str, Any]:
    abstained = pred["confidence"] < threshold
    return pred | {"abstained": abstained, "predicted_category": None if abstained else pred["top_categories"][0]}


def score(rows: Sequence[dict[str, Any]], preds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The eval README's metrics, each on its own: top-1/top-3/false abstention in-taxonomy, abstention out."""
    ins = [(c, p) for c, p in zip(rows, preds, strict=True) if c.get("expected_category")]
    outs = [p for c, p in zip(rows, preds, strict=True) if not c.get("expected_category")]
    top1 = sum(p["predicted_category"] == c["expected_category"] and not p["abstained"] for c, p in ins)
    top3 = sum(c["expected_category"] in p["top_categories"][:3] for c, p in ins)
    false_abs = sum(p["abstained"] for _, p in ins)
    abst = sum(p["abstained"] or p["predicted_category"] in (None, "unknown") for p in outs)

    def ratio(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    return {"top1": ratio(top1, len(ins)), "top3": ratio(top3, len(ins)), "abstention": ratio(abst, len(outs)),
            "false_abstention": ratio(false_abs, len(ins)), "n_in": len(ins), "n_out": len(outs)}


def choose_threshold(in_confidences: Sequence[float], max_false_abstention: float = 0.05) -> float:
    """Split-conformal threshold: abstain below the k-th lowest in-taxonomy confidence, k = floor(alpha*(n+1)).

    For a new in-taxonomy alert exchangeable with the n calibration cases, P(confidence < threshold) <= alpha,
    i.e. false abstention stays at most `max_false_abstention` (5 %) in expectation. With k = 0 (n < 19 at
    alpha 5 %) there is no such guarantee and the analysis never abstains.
    """
    conf = sorted(in_confidences)
    k = math.floor(max_false_abstention * (len(conf) + 1))
    if k == 0:
        return 0.0
    return round(conf[k - 1] - 1e-4, 4)


def write_calibration(rows: Sequence[dict[str, Any]], preds: Sequence[dict[str, Any]], current: Calibration,
                      path: Path = CALIBRATION_PATH, cases_name: str = "the case file") -> Calibration:
    conf_in = [p["confidence"] for c, p in zip(rows, preds, strict=True) if c.get("expected_category")]
    threshold = choose_threshold(conf_in)
    data = {"k": current.k, "rank_decay": current.rank_decay, "threshold": threshold,
            "method": f"split-conformal, alpha 0.05, on {len(conf_in)} in-taxonomy cases of {cases_name} "
                      "(cali eval rag --calibrate); see docs/analysis.md"}
    data |= {k: v for k, v in current.extra.items() if k not in data}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {path}: threshold {threshold}")
    return Calibration.load(path)


def _taxonomy() -> dict[str, str]:
    path = taxonomy_path()
    if path is None:
        console.print("[yellow]taxonomy.tsv not found ($CALI_TAXONOMY); categories come from the KB only[/yellow]")
        return {}
    return load_taxonomy(path)


@contextmanager
def _store_or_exit(db: Path, embedder: str, rebuild: bool = False) -> Iterator[Any]:
    from cali.vector.milvus import VectorStoreError

    if embedder not in EMBEDDERS:
        console.print(f"[red]unknown embedder {embedder!r}[/red]; one of {', '.join(EMBEDDERS)}")
        raise typer.Exit(2)
    try:
        store = open_store(db, EMBEDDERS[embedder](), rebuild=rebuild)
    except VectorStoreError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    try:
        yield store
    finally:
        store.close()
