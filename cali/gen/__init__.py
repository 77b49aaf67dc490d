"""Simulated application logs from several ecosystems, with scripted incidents, for demos and tests."""

from cali.gen.generator import LogGenerator
from cali.gen.writer import run_generate

__all__ = ["LogGenerator", "run_generate"]
