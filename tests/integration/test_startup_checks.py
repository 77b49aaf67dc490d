"""`cali run` and the health checks against a port that only listens, or accepts and never answers: each
system that did not answer is named on its own line, with its endpoint, and `cali run` exits 1 without
starting anything. Slack's and Milvus's checks are bounded the same way (pytest's timeout guards a hang)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.integration.conftest import stack_missing
from tests.support.blockers import KINDS, PortBlocker
from tests.support.require import require
from tests.support.survivors import TAG_VAR, tagged_processes

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
LOCAL_WEBHOOK = "http://127.0.0.1:9/services/T000/B000/local"
DYNAMODB = {"dynamodb-checkpoints", "dynamodb-state", "dynamodb-outbox"}
# (what is blocked, extra settings, the checks that must fail: each names the blocked endpoint)
CASES = {
    "kinesis": ({"CALI_AWS__KINESIS_ENDPOINT_URL": "{blocked}"}, {"kinesis"}),
    "moto": ({"CALI_AWS__ENDPOINT_URL": "{blocked}", "CALI_STATE__BACKEND": "dynamodb",
              "CALI_SLACK__WEBHOOK_URL": None, "CALI_SLACK__WEBHOOK_SECRET_ID": "cali/slack-webhook"},
             {"s3-archive", *DYNAMODB, "secretsmanager", "slack"}),
    "llm": ({"CALI_ANALYSIS__LLM__BASE_URL": "{blocked}/v1", "CALI_ANALYSIS__LLM__MODEL": "m",
             "CALI_ANALYSIS__LLM__API_KEY": "k"}, {"llm"}),
}


@pytest.fixture
def local_stack(request):
    require(stack_missing())
    return request.getfixturevalue("stack")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("blocked", sorted(CASES))
def test_cali_run_names_each_system_that_does_not_answer(local_stack, tmp_path, blocked, kind):
    extra, failing = CASES[blocked]
    tag = uuid.uuid4().hex
    with PortBlocker(kind) as blocker:
        url = f"http://127.0.0.1:{blocker.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALI_")}
        env.update({TAG_VAR: tag, "PYTHONPATH": str(ROOT),
                    "CALI_AWS__KINESIS_ENDPOINT_URL": local_stack.kinesis_endpoint,
                    "CALI_AWS__ENDPOINT_URL": local_stack.aws_endpoint, "CALI_AWS__ACCESS_KEY_ID": "testing",
                    "CALI_AWS__SECRET_ACCESS_KEY": "testing", "CALI_STATE__SQLITE_DIR": str(tmp_path / "state"),
                    "CALI_SLACK__WEBHOOK_URL": LOCAL_WEBHOOK})
        for key, value in extra.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value.format(blocked=url)
        done = subprocess.run([sys.executable, "-m", "cali", "run"], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
    print(done.stderr)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    named = {line.removeprefix("cali run: ").split(":", 1)[0] for line in lines}
    assert named == failing, lines
    assert all(f"127.0.0.1:{blocker.port}" in line for line in lines), lines
    assert "Traceback" not in done.stdout + done.stderr
    assert not tagged_processes(tag)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_slack_bot_check_does_not_wait_on_a_silent_api(kind):
    from cali.notify.slack import SlackNotifier

    with PortBlocker(kind) as blocker:
        notifier = SlackNotifier(bot_token=SecretStr("xoxb-1-2-abc"), channel="#alerts",
                                 api_url=f"http://127.0.0.1:{blocker.port}/api/")
        health = notifier.healthcheck()
    assert not health.ok and "unreachable" in health.detail, health


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_milvus_check_does_not_wait_on_a_silent_server(kind):
    from cali.embed.hashing import HashingEmbedder
    from cali.vector.milvus import MilvusStore

    with PortBlocker(kind) as blocker:
        uri = f"http://127.0.0.1:{blocker.port}"
        health = MilvusStore(HashingEmbedder(), uri=uri, connect_timeout_s=2).healthcheck()
    assert not health.ok and uri in health.detail, health


def test_a_ray_imported_before_the_loopback_env_is_refused_before_it_starts(tmp_path):
    # A library caller that imports ray first would get a Ray on every interface: init_ray says so instead.
    code = ("import ray\nfrom cali import bootstrap\nfrom cali.config import Settings\n"
            "try:\n    bootstrap.init_ray(Settings())\nexcept Exception as exc:\n    print(type(exc).__name__, exc)\n"
            "print('initialized', ray.is_initialized())\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_ADDRESS") and not k.startswith("CALI_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert "RayEnvError Ray was imported before RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0" in done.stdout, done.stderr
    assert "initialized False" in done.stdout
