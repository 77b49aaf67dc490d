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
        pytest.skip(reason)
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
        pytest.skip(reason)
    return make_config
