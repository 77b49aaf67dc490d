"""Integration fixtures: the local stack (kinesalite + moto) on free ports in a temp state dir."""

from __future__ import annotations

import importlib.util
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cali.stack import StackConfig, boto_client, down, up
from cali.stack.config import repo_root
from cali.stack.procs import free_port
from tests.support import needs

NODE_MODULES = repo_root() / ".local" / "node" / "node_modules"




def stack_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not on PATH (kinesalite needs Node.js)"
    if not (NODE_MODULES / "kinesalite").is_dir():
        return f"kinesalite is not installed in {NODE_MODULES}: npm install --prefix .local/node kinesalite@3.3.3"
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("werkzeug") is None:
        return "moto[server] is not installed: pip install 'moto[server]'"
    return None


def make_config(state_dir: Path, **extra: object) -> StackConfig:
    return StackConfig(state_dir=state_dir, kinesis_port=free_port(), aws_port=free_port(),
                       node_modules=NODE_MODULES, **extra)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    reason = stack_missing()
    if reason:
        needs.missing(reason)
    cfg = make_config(tmp_path_factory.mktemp("stack"))
    try:
        up(cfg)
    except Exception:
        down(cfg)
        raise
    yield cfg
    down(cfg)


@pytest.fixture(scope="session")
def kinesis_client(stack: StackConfig):
    return boto_client("kinesis", stack.kinesis_endpoint, stack.region, verify=stack.kinesis_verify)


@pytest.fixture
def kinesis(stack: StackConfig, kinesis_client):
    from cali.sources.kinesis import KinesisSource

    return KinesisSource(kinesis_client, stack.stream)


@pytest.fixture
def fresh_stream(kinesis_client):
    """A new 2-shard stream per test, so tests never read each other's records."""
    from cali.sources.kinesis import KinesisSource

    name = f"t-{uuid.uuid4().hex[:12]}"
    kinesis_client.create_stream(StreamName=name, ShardCount=2)
    source = KinesisSource(kinesis_client, name)
    source.wait_active()
    yield source
    kinesis_client.delete_stream(StreamName=name)


@pytest.fixture(scope="session")
def aws_clients(stack: StackConfig) -> dict:
    return {name: boto_client(name, stack.aws_endpoint, stack.region)
            for name in ("s3", "dynamodb", "secretsmanager", "firehose")}


@pytest.fixture
def stack_config_factory():
    """Builds StackConfigs on fresh free ports (for tests that run their own stack); skips if absent."""
    reason = stack_missing()
    if reason:
        needs.missing(reason)
    return make_config


# Actors get Settings without secrets and read them from their environment, inherited from the
# process that starts Ray: the local stack's dummy credentials are exported before ray.init().
LOCAL_SECRETS_ENV = {"CALI_AWS__ACCESS_KEY_ID": "testing", "CALI_AWS__SECRET_ACCESS_KEY": "testing"}


def init_local_ray(namespace: str, num_cpus: int = 2):
    import os

    import ray

    from cali.bootstrap import LOOPBACK_ENV

    os.environ.update(LOOPBACK_ENV)
    for k, v in LOCAL_SECRETS_ENV.items():
        os.environ.setdefault(k, v)
    # address="local": a cluster of our own, even if `ray start` left a record of another one on the machine
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, namespace=namespace, logging_level="ERROR",
             log_to_driver=False, runtime_env={"env_vars": LOOPBACK_ENV})
    return ray


@pytest.fixture
def webhook_secret(aws_clients):
    """Stores a webhook URL in Secrets Manager (moto) and returns its id, as production configures Slack."""
    def store(url: str) -> str:
        name = f"t/slack-{uuid.uuid4().hex[:8]}"
        aws_clients["secretsmanager"].create_secret(Name=name, SecretString=url)
        return name

    return store


def pipeline_settings(stack, stream, state_dir, webhook_id, **extra):
    """Settings of a pipeline on the local stack: its own Ray namespace, 2 trackers, short leases."""
    from cali.config import local_settings

    sections = {"kinesis": {"rescan_interval_s": 0.5}, "archive": {"flush_interval_s": 0.3},
                "alerting": {"trackers": 2}, "pipeline": {"lease_ttl_s": 4},
                "ray": {"namespace": f"t-{uuid.uuid4().hex[:8]}", "reader_cpus": 0.05, "tracker_cpus": 0.05,
                        "alerter_cpus": 0.05}}
    for section, values in extra.items():
        sections[section] = {**sections.get(section, {}), **values}
    return local_settings(kinesis_endpoint=stack.kinesis_endpoint, aws_endpoint=stack.aws_endpoint,
                          state_dir=state_dir, webhook_url=None, stream=stream, bucket=stack.bucket,
                          slack={"webhook_secret_id": webhook_id}, **sections)


@pytest.fixture
def dynamodb_tables(stack):
    """Fresh lease, state and outbox tables on moto, so tests sharing the stack never share a queue."""
    from dataclasses import replace

    from cali.stack.resources import ensure_tables

    suffix = uuid.uuid4().hex[:8]
    cfg = replace(stack, checkpoint_table=f"ck-{suffix}", state_table=f"st-{suffix}", outbox_table=f"ob-{suffix}")
    ensure_tables(cfg)
    return {"backend": "dynamodb", "checkpoint_table": cfg.checkpoint_table, "state_table": cfg.state_table,
            "outbox_table": cfg.outbox_table}
