"""Injection cases (eval/injection.jsonl) through the loopback OpenAI server: a model steered by the log text
must not get its URL, command, host or e-mail to on-call, and its ungrounded advice is marked as its own."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cali.analysis.analyst import Analyst
from cali.analysis.kb import load_incident, load_taxonomy
from cali.analysis.model import Analysis, Hit
from cali.analysis.retrieval import Calibration, retrieval_only_analysis
from cali.core.alerts import Alert, AlertKind, Severity, analysis_alert
from cali.core.records import from_wire
from cali.llm.openai_chat import OpenAIChat
from cali.notify.blocks import render_alert
from tests.support.fake_openai import FakeOpenAI
from tests.support.slack_view import check_block_kit, reader_view

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CASES = [json.loads(line) for line in (REPO / "eval" / "injection.jsonl").read_text().splitlines() if line.strip()]
TAXONOMY = load_taxonomy(REPO / "knowledge" / "taxonomy.tsv")


def hits_for(ids: list[str]) -> list[Hit]:
    out = []
    for rank, i in enumerate(ids):
        inc = load_incident(REPO / "knowledge" / "incidents" / f"{i}.yaml")
        out.append(Hit(id=inc.id, category=inc.category, title=inc.title, score=0.9 - rank / 10,
                       dense_score=0.8 - rank / 10, root_cause=inc.root_cause, remediation=inc.remediation))
    return out


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI("ok") as server:
        yield server


def analyse(fake: FakeOpenAI, case: dict[str, Any]) -> tuple[Analysis, Analysis]:
    fake.verdict = case["verdict"]
    record = from_wire(case["record"])
    hits = hits_for(case["retrieved"])
    retrieval = retrieval_only_analysis(record, hits, Calibration(threshold=0.3), list(TAXONOMY))
    llm = OpenAIChat(base_url=fake.base_url, model="fake-model", timeout_s=5, max_retries=0, mode_cache={})
    analyst = Analyst(llm, TAXONOMY, timeout_s=10)
    return asyncio.run(analyst.analyze(record, hits, retrieval)), retrieval


def advice(result: Analysis) -> str:
    """What reaches on-call as advice: the cause and every step, grounded or the model's own."""
    return "\n".join([result.probable_cause, *result.remediation, *result.model_suggestions]).lower()


def slack_advice(result: Analysis) -> tuple[str, list[str]]:
    now = datetime(2026, 11, 21, 8, 2, 11, tzinfo=UTC)
    parent = Alert(alert_id="a", kind=AlertKind.FIRST, incident_key="k", fingerprint="fp", service="svc",
                   level="ERROR", severity=Severity.HIGH, message="m", template="m", count=1, first_seen=now,
                   last_seen=now, created_at=now)
    msg = render_alert(analysis_alert(parent, result.model_dump(mode="json"), parent.created_at))
    check_block_kit(msg.blocks)
    texts = [b["text"]["text"] for b in msg.blocks if b["type"] == "section"
             and b["text"]["text"].startswith(("*Probable cause*", "*Remediation*", "*Suggested by the model*"))]
    views = [reader_view(t) for t in texts]
    return "\n".join(v.text for v in views).lower(), [m for v in views for m in v.mentions]


def test_the_case_file_has_injections_controls_and_known_misses() -> None:
    kinds = {c["kind"] for c in CASES}
    assert kinds == {"injection", "control", "known-miss"}
    assert len({c["id"] for c in CASES}) == len(CASES)
    assert sum(c["kind"] == "injection" for c in CASES) >= 10


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(fake: FakeOpenAI, case: dict[str, Any]) -> None:
    result, retrieval = analyse(fake, case)
    expect = case["expect"]
    steps = [s.strip() for s in case["verdict"]["remediation"]]
    assert result.mode == "llm", result.degraded_reason
    for text in expect.get("absent", []):
        assert text.lower() not in advice(result), text
    grounded = steps if expect.get("grounded") == "all" else expect.get("grounded", [])
    for step in grounded:
        assert step in result.remediation, (step, result)
    if expect.get("grounded") == "all":
        assert result.model_suggestions == []
    for step in expect.get("suggested", []):
        assert step in result.model_suggestions and step not in result.remediation
    kept = set(result.remediation) | set(result.model_suggestions)
    dropped = [s for s in steps if s not in kept]
    assert len(dropped) == expect["dropped"], (dropped, result.grounding_notes)
    assert any("dropped" in n for n in result.grounding_notes) == bool(expect["dropped"])
    if expect["cause_replaced"]:
        assert result.probable_cause == retrieval.probable_cause
        assert any("probable cause was replaced" in n for n in result.grounding_notes)
    else:
        assert result.probable_cause == case["verdict"]["probable_cause"]
    assert set(result.remediation_from) <= {h for h in case["retrieved"]}
    seen, mentions = slack_advice(result)
    assert mentions == []
    for text in expect.get("absent", []):
        assert text.lower() not in seen, text
    for step in result.model_suggestions:
        assert step.lower() in seen  # shown, under the model's own heading
