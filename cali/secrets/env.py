"""A secret from one environment variable, read when asked (never at import or construction)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import SecretStr

from cali.core.ports import Health
from cali.secrets import SecretError


class EnvSecret:
    """The value of `var_name` in `environ` (default: os.environ at call time)."""

    def __init__(self, var_name: str, environ: Mapping[str, str] | None = None) -> None:
        if not var_name:
            raise ValueError("EnvSecret needs an environment variable name")
        self.var_name = var_name
        self._environ = environ

    def __repr__(self) -> str:
        return f"EnvSecret(var_name={self.var_name!r})"

    def _raw(self) -> str | None:
        env = os.environ if self._environ is None else self._environ
        return env.get(self.var_name)

    def get(self) -> SecretStr:
        raw = self._raw()
        if raw is None:
            raise SecretError(f"environment variable {self.var_name} is not set: export {self.var_name}=...")
        if not raw.strip():
            raise SecretError(f"environment variable {self.var_name} is set but empty")
        return SecretStr(raw.strip())

    def healthcheck(self) -> Health:
        name = f"env-secret:{self.var_name}"
        try:
            n = len(self.get().get_secret_value())
        except SecretError as exc:
            return Health(name, False, str(exc))
        return Health(name, True, f"found, {n} chars")


__all__ = ["EnvSecret"]
