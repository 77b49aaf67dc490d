#!/usr/bin/env python3
"""Validate the CALI incident knowledge base.

Usage:
    python3 knowledge/check.py [path/to/taxonomy.tsv]

Taxonomy path: argv[1], else $CALI_TAXONOMY, else ../shared/eval/taxonomy.tsv
relative to the repo root (the parent of this knowledge/ directory).
If the taxonomy file is absent, the category checks are skipped with a warning.
Exit status 0 = OK, 1 = errors found.
"""
import os
import re
import sys
from collections import Counter

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("pyyaml is required (python3 -c 'import yaml')")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
INCIDENT_DIR = os.path.join(HERE, "incidents")

REQUIRED = ["id", "title", "category", "severity", "affected_stack",
            "symptoms", "root_cause", "remediation"]
SEVERITIES = {"critical", "high", "medium", "low"}
ID_RE = re.compile(r"^inc-\d{4}$")
MIN_PER_CATEGORY = 3


def load_taxonomy(path):
    cats = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            cid = line.split("\t", 1)[0].strip()
            if i == 0 and cid == "id":  # header row
                continue
            cats.append(cid)
    return cats


def main(argv):
    tax_path = (argv[1] if len(argv) > 1 else os.environ.get("CALI_TAXONOMY")
                or os.path.join(REPO_ROOT, "..", "shared", "eval", "taxonomy.tsv"))
    taxonomy = None
    if os.path.isfile(tax_path):
        taxonomy = load_taxonomy(tax_path)
    else:
        print(f"WARNING: taxonomy not found at {tax_path}; skipping category checks")

    errors = []
    ids = {}
    per_cat = Counter()
    files = sorted(f for f in os.listdir(INCIDENT_DIR) if f.endswith((".yaml", ".yml")))
    if not files:
        errors.append(f"no incident files in {INCIDENT_DIR}")

    for fname in files:
        path = os.path.join(INCIDENT_DIR, fname)
        try:
            with open(path, encoding="utf-8") as fh:
                doc = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            errors.append(f"{fname}: YAML parse error: {exc}")
            continue
        if not isinstance(doc, dict):
            errors.append(f"{fname}: top level is not a mapping")
            continue
        missing = [k for k in REQUIRED if doc.get(k) in (None, "", [])]
        if missing:
            errors.append(f"{fname}: missing/empty fields: {', '.join(missing)}")
        iid = str(doc.get("id", ""))
        if not ID_RE.match(iid):
            errors.append(f"{fname}: id {iid!r} does not look like inc-NNNN")
        stem = os.path.splitext(fname)[0]
        if iid != stem:
            errors.append(f"{fname}: id {iid!r} does not match file name {stem!r}")
        if iid in ids:
            errors.append(f"{fname}: duplicate id {iid!r} (also in {ids[iid]})")
        ids[iid] = fname
        if doc.get("severity") not in SEVERITIES:
            errors.append(f"{fname}: severity {doc.get('severity')!r} not in {sorted(SEVERITIES)}")
        for key in ("affected_stack", "symptoms", "remediation"):
            val = doc.get(key)
            if val is not None and not (isinstance(val, list) and all(isinstance(x, str) and x.strip() for x in val)):
                errors.append(f"{fname}: {key} must be a list of non-empty strings")
        if isinstance(doc.get("symptoms"), list) and not 1 <= len(doc["symptoms"]) <= 8:
            errors.append(f"{fname}: symptoms should have 1-8 entries (has {len(doc['symptoms'])})")
        refs = doc.get("references")
        if refs is not None and not (isinstance(refs, list) and all(isinstance(r, str) and r.startswith("http") for r in refs)):
            errors.append(f"{fname}: references must be a list of URLs")
        cat = doc.get("category")
        if taxonomy is not None and cat not in taxonomy:
            errors.append(f"{fname}: category {cat!r} not in taxonomy")
        per_cat[cat] += 1

    if taxonomy is not None:
        for cat in taxonomy:
            if per_cat[cat] < MIN_PER_CATEGORY:
                errors.append(f"category {cat!r} has {per_cat[cat]} incidents (< {MIN_PER_CATEGORY})")

    print(f"{len(files)} incident files, {len(per_cat)} categories")
    for cat, n in sorted(per_cat.items(), key=lambda kv: str(kv[0])):
        print(f"  {n:3d}  {cat}")
    if errors:
        print(f"\n{len(errors)} error(s):")
        for e in errors:
            print("  - " + e)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
