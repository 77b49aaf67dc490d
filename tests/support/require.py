"""Skip on a laptop that lacks a local service; fail in CI, where a skip would hide a broken install."""

from __future__ import annotations

import os

import pytest


def require(reason: str | None) -> None:
    if reason and os.environ.get("CI"):
        pytest.fail(f"CI is set and this test cannot run: {reason}")
    if reason:
        pytest.skip(reason)
