"""The Alerter's way to the analyzer: a Serve DeploymentHandle, not HTTP."""

from __future__ import annotations

from typing import Any


class ServeAnalysisClient:
    """AnalysisClient over DeploymentHandle.analyze; called from worker threads, never an event loop."""

    def __init__(self, app_name: str = "cali-analysis", deployment: str = "Analyzer") -> None:
        self.app_name, self.deployment = app_name, deployment
        self._handle: Any = None

    def analyze(self, record: dict[str, Any], *, fingerprint: str, use_llm: bool, timeout_s: float) -> dict[str, Any]:
        if self._handle is None:
            from ray import serve

            self._handle = serve.get_deployment_handle(self.deployment, app_name=self.app_name)
        return self._handle.analyze.remote(record, use_llm).result(timeout_s=timeout_s)
