"""Skip a test whose dependency is absent on a laptop; fail it in CI, where a skip would hide a broken install."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def missing(reason: str) -> None:
    """Skips with the reason, or fails when the CI environment variable is set."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the Makefile installs this, so its absence is a broken install)",
                    pytrace=False)
    pytest.skip(reason)


def module(name: str, reason: str) -> ModuleType:
    """importorskip that fails in CI."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(reason)
        raise  # unreachable: missing() raises
