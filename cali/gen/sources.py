"""The demo's eight services as log sources: where the generator writes them and in which format."""

from __future__ import annotations

from pathlib import Path

from cali.core.parsing import Source
from cali.gen.services import SERVICES

# One file per simulated service, named after it; paths are relative to the directory written to.
DEMO_SOURCES: tuple[Source, ...] = tuple(Source(s.name, s.format, f"{s.name}.log") for s in SERVICES.values())


def demo_sources(log_dir: Path) -> list[Source]:
    """The demo's sources with their files under `log_dir` (as the shipper and Fluent Bit tail them)."""
    return [Source(s.service, s.format, str(Path(log_dir) / s.path)) for s in DEMO_SOURCES]
