"""Submitting the reindex Ray Job with the Job Submission API (JobSubmissionClient), and waiting for it."""

from __future__ import annotations

import json
import shlex
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from cali.config import Settings, without_secrets

REPO_SCRIPT = Path(__file__).resolve().parents[2] / "jobs" / "reindex.py"
IMAGE_SCRIPT = "/app/jobs/reindex.py"  # where the Dockerfile puts it (k8s/kuberay/rayjob-reindex.yaml)
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


class JobFailed(RuntimeError):
    """The Ray Job ended other than SUCCEEDED; the message has its status, message and last log lines."""


def entrypoint(settings: Settings, day: str) -> str:
    """batch.job_entrypoint with {date}; by default this checkout's jobs/reindex.py with this Python (a local
    Ray shares the machine), else the image's /app/jobs/reindex.py."""
    if settings.batch.job_entrypoint:
        return settings.batch.job_entrypoint.format(date=day)
    if REPO_SCRIPT.is_file():
        return f"{shlex.quote(sys.executable)} {shlex.quote(str(REPO_SCRIPT))} --date {day}"
    return f"python {IMAGE_SCRIPT} --date {day}"


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as CALI_<SECTION> JSON variables, without secrets (they stay out of the job's spec, which
    Ray keeps in its GCS): for a job whose cluster does not carry CALI's configuration itself (a local Ray)."""
    public = without_secrets(settings)
    # The job's working directory is not ours: relative paths are made absolute first.
    kb = public.analysis.kb_uri
    if "://" not in kb:
        public.analysis.kb_uri = str(Path(kb).resolve())
    public.state.sqlite_dir = Path(public.state.sqlite_dir).resolve()
    env = {}
    for name in type(settings).model_fields:
        value = getattr(public, name)
        # None left out: a secret removed above must not hide the one the job reads from its environment.
        dumped = value.model_dump(mode="json", exclude_none=True) if hasattr(value, "model_dump") \
            else [v.model_dump(mode="json") for v in value]
        env[f"CALI_{name.upper()}"] = json.dumps(dumped)
    return env


def submit_and_wait(address: str, settings: Settings, day: str, *, pass_settings: bool = False,
                    poll_s: float = 2.0) -> dict[str, Any]:
    """JobSubmissionClient.submit_job of the reindex entry point, then get_job_status until it ends.

    Raises JobFailed when it does not succeed, and stops it (stop_job) when it runs past batch.job_timeout_s.
    """
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address)
    runtime_env = {"env_vars": settings_env(settings)} if pass_settings else None
    job_id = client.submit_job(entrypoint=entrypoint(settings, day), runtime_env=runtime_env,
                               submission_id=f"cali-reindex-{day}-{uuid.uuid4().hex[:8]}",
                               metadata={"cali.day": day, "cali.job": "reindex"})
    deadline = time.monotonic() + settings.batch.job_timeout_s
    while True:
        status = str(client.get_job_status(job_id))
        status = status.rsplit(".", 1)[-1]  # JobStatus.SUCCEEDED -> SUCCEEDED
        if status in TERMINAL:
            break
        if time.monotonic() > deadline:
            client.stop_job(job_id)
            raise JobFailed(f"Ray Job {job_id} at {address} still {status} after {settings.batch.job_timeout_s:.0f}s "
                            "(batch.job_timeout_s): stopped it")
        time.sleep(poll_s)
    if status != "SUCCEEDED":
        info = client.get_job_info(job_id)
        logs = client.get_job_logs(job_id).splitlines()[-30:]
        raise JobFailed(f"Ray Job {job_id} at {address} ended {status}: {info.message}\n" + "\n".join(logs))
    return {"job_id": job_id, "status": status, "address": address}
