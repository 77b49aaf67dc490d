"""Starts, inspects, checks and stops the actor pipeline on a running Ray."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import ray

from cali.actors import names
from cali.actors.alerter import Alerter
from cali.actors.incident_tracker import IncidentTracker
from cali.actors.supervisor import StreamSupervisor
from cali.config import PipelineSettings, Settings, without_secrets


def actor_settings(settings: Settings) -> Settings:
    """What the actors get: no secrets (each reads them from its environment), and one lease owner id."""
    from cali.bootstrap import worker_id

    pipeline = settings.pipeline.model_copy(update={"worker_id": worker_id(settings)})
    return without_secrets(settings).model_copy(update={"pipeline": pipeline})


def start_pipeline(settings: Settings) -> dict[str, Any]:
    """Creates (or joins) the named, detached actors and starts their loops."""
    r = settings.ray
    settings = actor_settings(settings)
    common = {"namespace": r.namespace, "get_if_exists": True, "lifetime": "detached", "max_restarts": -1}
    alerter = Alerter.options(name=names.ALERTER, num_cpus=r.alerter_cpus, **common).remote(settings)
    trackers = [IncidentTracker.options(name=names.tracker(i), num_cpus=r.tracker_cpus, **common)
                .remote(settings, i) for i in range(settings.alerting.trackers)]
    supervisor = StreamSupervisor.options(name=names.SUPERVISOR, num_cpus=r.tracker_cpus, **common).remote(settings)
    # Each actor starts its own loop in __init__; waiting for them here surfaces start-up errors to the
    # caller. Trackers take their partition leases in the background: readers wait for them.
    ray.get([alerter.stats.remote(), supervisor.scan_count.remote()] + [t.stats.remote() for t in trackers])
    return {"alerter": alerter, "trackers": trackers, "supervisor": supervisor}


def _get(name: str, namespace: str) -> Any | None:
    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError:
        return None


def pipeline_status(settings: Settings, timeout: float = 10.0) -> dict[str, Any]:
    """Every actor's own report; one that does not answer in time is listed under "unanswered"."""
    ns = settings.ray.namespace
    out: dict[str, Any] = {"shards": [], "trackers": [], "alerter": None, "unanswered": []}

    def ask(name: str, method: str) -> Any:
        handle = _get(name, ns)
        if handle is None:
            return None
        try:
            return ray.get(getattr(handle, method).remote(), timeout=timeout)
        except (ray.exceptions.RayError, TimeoutError) as exc:
            out["unanswered"].append(f"{name}: {type(exc).__name__}")
            return None

    out["shards"] = ask(names.SUPERVISOR, "status") or []
    out["trackers"] = [t for i in range(settings.alerting.trackers) if (t := ask(names.tracker(i), "stats"))]
    out["alerter"] = ask(names.ALERTER, "stats")
    return out


@dataclass
class PipelineHealth:
    ok: bool
    problems: list[str] = field(default_factory=list)
    checked_at: float = 0.0

    def summary(self) -> str:
        return "ok" if self.ok else "; ".join(self.problems)


def pipeline_health(settings: Settings, timeout: float = 5.0, now: datetime | None = None) -> PipelineHealth:
    """Alive and moving: every actor answers within `timeout`, and no shard with records waiting has gone
    `pipeline.stall_s` without a checkpoint. What `cali run`, the Serve pipeline app and probes ask."""
    p: PipelineSettings = settings.pipeline
    ns = settings.ray.namespace
    now = now or datetime.now(UTC)
    problems: list[str] = []
    actors = [(names.SUPERVISOR, "status")] + [(names.tracker(i), "stats") for i in range(settings.alerting.trackers)]
    actors.append((names.ALERTER, "stats"))
    answers: dict[str, Any] = {}
    for name, method in actors:
        handle = _get(name, ns)
        if handle is None:
            problems.append(f"actor {name} is not running (namespace {ns})")
            continue
        try:
            answers[name] = ray.get(getattr(handle, method).remote(), timeout=timeout)
        except (ray.exceptions.RayError, TimeoutError) as exc:
            problems.append(f"actor {name} did not answer within {timeout:.0f}s ({type(exc).__name__})")
    for row in answers.get(names.SUPERVISOR) or []:
        if "error" in row:
            problems.append(f"reader of {row['shard_id']} did not answer ({row['error']})")
            continue
        if row.get("state") in ("shard_end", "waiting", "leasing"):
            continue
        waiting = (row.get("millis_behind_latest") or 0) > 0 or (row.get("pending_bytes") or 0) > 0
        last = row.get("last_checkpoint_at") or row.get("started_at")
        if waiting and last and (now - datetime.fromisoformat(last)).total_seconds() > p.stall_s:
            problems.append(f"shard {row['shard_id']}: records waiting and no checkpoint since {last} "
                            f"(state {row.get('state')}, last error: {row.get('last_error')})")
    return PipelineHealth(not problems, problems, time.time())


def stop_pipeline(settings: Settings, timeout: float = 60.0) -> None:
    """Readers write what they buffered and hand their leases over, trackers stop and hand theirs over, the
    alerter drains, then all are killed."""
    ns = settings.ray.namespace
    sup = _get(names.SUPERVISOR, ns)
    if sup is not None:
        try:
            ray.get(sup.stop.remote(), timeout=timeout)
        finally:
            ray.kill(sup, no_restart=True)
    for i in range(settings.alerting.trackers):
        t = _get(names.tracker(i), ns)
        if t is not None:
            try:
                ray.get(t.stop.remote(), timeout=timeout)
            finally:
                ray.kill(t, no_restart=True)
    alerter = _get(names.ALERTER, ns)
    if alerter is not None:
        try:
            ray.get(alerter.stop.remote(), timeout=timeout)
        finally:
            ray.kill(alerter, no_restart=True)
    for shard in [n for n in _actor_names(ns) if n.startswith("shard-reader:")]:
        handle = _get(shard, ns)
        if handle is not None:
            ray.kill(handle, no_restart=True)


def _actor_names(namespace: str) -> list[str]:
    try:
        return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == namespace]
    except Exception:  # listing is a convenience for cleanup; the supervisor stopped its readers already
        return []
