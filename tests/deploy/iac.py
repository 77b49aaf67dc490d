"""Loaders shared by the deploy tests: Terraform (python-hcl2), manifests, and the IaC tool venv."""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "infra" / "terraform"
KUBERAY = REPO / "k8s" / "kuberay"
TOOLS = REPO / ".local" / "deploy-tools"
SKIPS = REPO / "infra" / "checkov-skips.yaml"


def shared_dir() -> Path:
    """The project's shared/ folder: beside the clone (../shared), or beside its parent for a worktree."""
    for base in (REPO.parent, REPO.parent.parent):
        if (base / "shared" / "kuberay").is_dir():
            return base / "shared"
    pytest.fail(f"no shared/kuberay beside {REPO} or its parent: the KubeRay CRDs and chart values live there")


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps HCL's quotes ("\\"x\\"") and adds __is_block__/__comments__; tests want plain values."""
    if isinstance(value, str):
        return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
    if isinstance(value, list):
        return [_unquote(v) for v in value]
    if isinstance(value, dict):
        return {_unquote(k): _unquote(v) for k, v in value.items() if not k.startswith("__")}
    return value


def load_hcl(path: Path) -> dict[str, Any]:
    import hcl2

    with path.open() as fh:
        return _unquote(hcl2.load(fh))


@cache
def root_module() -> dict[str, Any]:
    """Every block of infra/terraform/*.tf, merged: resource[type][name], module[name], variable[name]..."""
    merged: dict[str, Any] = {"resource": {}, "data": {}, "module": {}, "variable": {}, "output": {}, "locals": {}}
    for path in sorted(TERRAFORM.glob("*.tf")):
        doc = load_hcl(path)
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                merged["resource"].setdefault(rtype, {}).update(named)
        for block in doc.get("data", []):
            for dtype, named in block.items():
                merged["data"].setdefault(dtype, {}).update(named)
        for key in ("module", "variable", "output"):
            for block in doc.get(key, []):
                merged[key].update(block)
        for block in doc.get("locals", []):
            merged["locals"].update(block)
    return merged


def tf_text() -> str:
    return "\n".join(p.read_text() for p in sorted(TERRAFORM.glob("*.tf")))


def yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


# Values shaped like the real ones, for rendering the manifests in tests (no account, no secret).
SAMPLE_VALUES = {
    "IMAGE": "registry.example/cali:0123abcd", "AWS_REGION": "eu-west-1", "CALI_ENV": "dev",
    "KINESIS_STREAM": "cali-dev-logs", "FIREHOSE_STREAM": "cali-dev-logs-to-opensearch",
    "ARCHIVE_BUCKET": "cali-dev-archive-x", "REPORTS_BUCKET": "cali-dev-reports-x",
    "MILVUS_BUCKET": "cali-dev-milvus-x",
    "MILVUS_ROLE_ARN": "arn:aws:iam::000000000000:role/cali-dev-milvus", "CHECKPOINT_TABLE": "cali-dev-checkpoints",
    "STATE_TABLE": "cali-dev-state", "OUTBOX_TABLE": "cali-dev-outbox",
    "SECRET_SLACK_WEBHOOK": "cali-dev/slack-webhook",
    "SECRET_SLACK_BOT_TOKEN": "cali-dev/slack-bot-token", "SECRET_LLM_API_KEY": "cali-dev/llm-api-key",
    "SECRET_ANALYZE_API_TOKEN": "cali-dev/analyze-api-token", "SECRET_MILVUS_TOKEN": "cali-dev/milvus-token",
    "SECRET_REDIS_AUTH": "cali-dev/redis-auth", "REDIS_ADDRESS": "rediss://gcs.example.internal:6379",
    "LLM_BASE_URL": "https://llm.example/v1", "LLM_MODEL": "some-model", "INGRESS_SCHEME": "internal",
    "INGRESS_SOURCE_CIDR": "10.40.224.0/20", "INGRESS_ALLOWED_CIDRS": "10.40.0.0/16",
    "ACM_CERTIFICATE_ARN": "arn:aws:acm:eu-west-1:000000000000:certificate/example",
    "OPENSEARCH_ENDPOINT": "vpc-cali-dev-logs.example",
}


def tool(*parts: str) -> Path:
    """A tool of the deploy-tools venv; skipped locally when absent, a failure under CI."""
    path = TOOLS.joinpath(*parts)
    if not path.exists():
        reason = f"{path.relative_to(REPO)} is missing: run `make deploy-tools`"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def checkov_skips() -> dict[str, str]:
    return yaml.safe_load(SKIPS.read_text())


def run_checkov(*args: str, skips: bool = True) -> dict[str, Any]:
    """checkov (with the repo's skip list unless skips=False); returns {'failed', 'failed_ids', 'passed'}."""
    checkov = tool("bin", "checkov")
    cmd = [str(checkov), "--quiet", "--compact", "--skip-download", "-o", "json", *args]
    if skips:
        cmd += ["--skip-check", ",".join(checkov_skips())]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    reports = _json_stream(proc.stdout)
    failed, failed_ids, passed = [], set(), 0
    for report in reports:
        results = report.get("results", {})
        passed += report.get("summary", {}).get("passed", 0)
        failed += [f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
                   for c in results.get("failed_checks", [])]
        failed_ids |= {c["check_id"] for c in results.get("failed_checks", [])}
    if not reports and proc.returncode not in (0, 1):
        pytest.fail(f"checkov {' '.join(args)} failed to run (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return {"failed": failed, "failed_ids": failed_ids, "passed": passed, "stderr": proc.stderr}


def _json_stream(text: str) -> list[dict[str, Any]]:
    """checkov prints one JSON document (an object or a list of them) per scanned directory."""
    decoder, pos, out = json.JSONDecoder(), 0, []
    text = text.strip()
    while pos < len(text):
        if text[pos] not in "[{":
            break
        doc, pos = decoder.raw_decode(text, pos)
        out += doc if isinstance(doc, list) else [doc]
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
