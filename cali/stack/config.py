"""Settings of the local AWS-compatible stack: ports, names, state dir."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_WEBHOOK_URL = "http://127.0.0.1:5066/services/T000/B000/local"
HOST = "127.0.0.1"


@dataclass
class StackConfig:
    state_dir: Path
    kinesis_port: int = 4567
    aws_port: int = 5055
    region: str = "us-east-1"
    stream: str = "cali-logs"
    shards: int = 2
    bucket: str = "cali-archive"
    checkpoint_table: str = "cali-checkpoints"
    state_table: str = "cali-state"
    outbox_table: str = "cali-outbox"
    secret_name: str = "cali/slack-webhook"
    webhook_url: str = DEFAULT_WEBHOOK_URL
    delivery_stream: str = "cali-logs-to-s3"
    tls: bool = False
    node_modules: Path | None = None  # default <repo>/.local/node/node_modules

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        if self.shards < 1:
            raise ValueError(f"shards must be >= 1, got {self.shards}")

    @property
    def kinesis_endpoint(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{HOST}:{self.kinesis_port}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://{HOST}:{self.aws_port}"

    @property
    def tls_dir(self) -> Path:
        return self.state_dir / "tls"

    @property
    def ca_path(self) -> Path:
        return self.tls_dir / "ca.pem"

    @property
    def kinesis_verify(self) -> str | bool:
        """What boto3's `verify` needs for the Kinesis endpoint: the local CA when TLS is on."""
        return str(self.ca_path) if self.tls else True

    def resolved_node_modules(self) -> Path:
        if self.node_modules:
            return Path(self.node_modules)
        return repo_root() / ".local" / "node" / "node_modules"


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def default_state_dir() -> Path:
    return repo_root() / ".local" / "stack"
