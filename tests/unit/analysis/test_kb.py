"""The knowledge-base loader: every curated file validates; the indexed text has the signal."""

from __future__ import annotations

from pathlib import Path

import pytest

from cali.analysis.commands import taxonomy_path
from cali.analysis.kb import (
    Incident,
    KnowledgeError,
    document_text,
    load_incidents,
    load_taxonomy,
    resolved_incident,
    symptom_head,
    taxonomy_incidents,
)

KB_DIR = Path(__file__).resolve().parents[3] / "knowledge" / "incidents"


def test_every_curated_incident_validates() -> None:
    tax_file = taxonomy_path()
    taxonomy = set(load_taxonomy(tax_file)) if tax_file else None
    incidents = load_incidents(KB_DIR, taxonomy)
    assert len(incidents) >= 155
    assert len({i.id for i in incidents}) == len(incidents)
    if taxonomy:
        per_cat = {c: sum(i.category == c for i in incidents) for c in taxonomy}
        assert min(per_cat.values()) >= 3, per_cat


def test_document_text_has_title_symptoms_and_a_short_root_cause() -> None:
    inc = next(i for i in load_incidents(KB_DIR) if i.id == "inc-0001")
    text = document_text(inc)
    assert text.startswith(inc.title)
    assert "Connection is not available" in text
    assert "\tat com.zaxxer" not in text and "at com.zaxxer.hikari" not in text  # frames dropped
    assert len(text) < len(inc.title) + sum(len(s) for s in inc.symptoms) + 400


def test_symptom_head_drops_stack_frames() -> None:
    trace = ("Traceback (most recent call last):\n  File \"app.py\", line 3, in <module>\n    main()\n"
             "ZeroDivisionError: division by zero\n\tat com.acme.Foo.bar(Foo.java:12)")
    head = symptom_head(trace)
    assert "ZeroDivisionError: division by zero" in head
    assert "File \"app.py\"" not in head and "Foo.java" not in head


def test_bad_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "inc-0001.yaml").write_text("id: inc-0001\ntitle: x\ncategory: disk-full\n")
    with pytest.raises(KnowledgeError, match="inc-0001.yaml"):
        load_incidents(tmp_path)


def test_file_name_must_match_id(tmp_path: Path) -> None:
    (tmp_path / "inc-0002.yaml").write_text(
        "id: inc-0003\ntitle: t\ncategory: disk-full\nseverity: low\nsymptoms: [a]\nroot_cause: r\nremediation: [x]\n")
    with pytest.raises(KnowledgeError, match="does not match the file name"):
        load_incidents(tmp_path)


def test_unknown_category_is_refused_with_a_taxonomy(tmp_path: Path) -> None:
    (tmp_path / "inc-0002.yaml").write_text(
        "id: inc-0002\ntitle: t\ncategory: cosmic-rays\nseverity: low\nsymptoms: [a]\nroot_cause: r\n"
        "remediation: [x]\n")
    with pytest.raises(KnowledgeError, match="not in the taxonomy"):
        load_incidents(tmp_path, {"disk-full"})


def test_resolved_incident_is_knowledge_from_run_time() -> None:
    inc = resolved_incident(title="billing: disk full on /var/lib/postgresql", category="disk-full",
                            root_cause="WAL archiving stalled.", remediation=["Free space"],
                            symptoms=["No space left on device"], fingerprint="fp123")
    assert inc.source == "resolved" and inc.id.startswith("res-") and inc.created_at is not None
    assert "No space left on device" in document_text(inc)


def test_taxonomy_descriptions_become_pseudo_incidents() -> None:
    docs = taxonomy_incidents({"disk-full": "no space left on a device"})
    assert docs == [Incident(id="tax-disk-full", title="disk-full: no space left on a device", category="disk-full",
                             symptoms=["no space left on a device"], root_cause="no space left on a device",
                             remediation=docs[0].remediation, severity="low")]
