"""The pipeline as a Serve application, for a RayService: its one replica owns the detached actors.

In a cluster nobody runs `cali run`; this replica starts (or joins) the supervisor, readers, trackers and
alerter, and its health check is the pipeline's liveness: Serve restarts a replica whose check fails,
and the replacement starts the pipeline again. `GET /pipeline/healthz` answers 200 or 503 for probes
and load balancers. Settings come from the replica's environment (CALI_*, a ConfigMap and a Secret).
"""

# No `from __future__ import annotations`: FastAPI resolves the ingress annotations in the replica.
import logging
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from ray import serve

log = logging.getLogger(__name__)
APP_NAME = "cali-pipeline"
ROUTE_PREFIX = "/pipeline"
# A failing check is retried by Serve every period; the pipeline is restarted only after this many in a
# row, so one slow answer during a reshard or a deploy does not restart everything.
FAILURES_BEFORE_RESTART = 3
api = FastAPI(title="CALI pipeline", description="Liveness and status of the Kinesis -> Slack pipeline.",
              version="1")


@serve.deployment(name="Pipeline", num_replicas=1, ray_actor_options={"num_cpus": 0.1},
                  health_check_period_s=30, health_check_timeout_s=60)
@serve.ingress(api)
class PipelineDeployment:
    def __init__(self) -> None:
        from cali.actors.launch import start_pipeline
        from cali.config import load_settings

        self.settings = load_settings()
        self.failures = 0
        self.last: Any = None
        start_pipeline(self.settings)
        log.info("pipeline started for stream %s", self.settings.kinesis.stream)

    def _check(self) -> Any:
        from cali.actors.launch import pipeline_health

        self.last = pipeline_health(self.settings)
        self.failures = 0 if self.last.ok else self.failures + 1
        return self.last

    def check_health(self) -> None:
        """Serve's liveness hook: raising makes Serve replace this replica, which restarts the pipeline."""
        health = self._check()
        if self.failures >= FAILURES_BEFORE_RESTART:
            from cali.actors.launch import stop_pipeline

            log.error("pipeline unhealthy %d checks in a row: %s; restarting it", self.failures, health.summary())
            try:
                stop_pipeline(self.settings, timeout=20)
            except Exception as exc:  # dead actors cannot be stopped gracefully; they are killed
                log.warning("stopping the unhealthy pipeline: %s", exc)
            raise RuntimeError(f"pipeline unhealthy: {health.summary()}")

    @api.get("/healthz")
    def healthz(self) -> JSONResponse:
        health = self.last or self._check()
        body = {"ok": health.ok, "problems": health.problems, "consecutive_failures": self.failures}
        return JSONResponse(body, status_code=200 if health.ok else 503)

    @api.get("/status")
    def status(self) -> dict[str, Any]:
        from cali.actors.launch import pipeline_status

        return pipeline_status(self.settings)


def app(args: dict[str, Any] | None = None) -> Any:
    """The application builder named in the Serve config (`import_path: cali.serve.pipeline:app`)."""
    return PipelineDeployment.bind()
