"""Secret sources: where a credential (the Slack webhook URL) comes from, as a pydantic SecretStr."""

from __future__ import annotations

from typing import Protocol

from pydantic import SecretStr

from cali.core.ports import HealthChecked


class SecretSource(HealthChecked, Protocol):
    def get(self) -> SecretStr:
        """The current value; raises SecretError (which never contains the value) if it is unavailable."""
        ...


class SecretError(Exception):
    """A secret could not be read; the message names the secret and the fix, never the value."""


__all__ = ["SecretError", "SecretSource"]
