"""Starts, inspects and stops the actor pipeline on a running Ray."""

from __future__ import annotations

from typing import Any

import ray

from cali.actors import names
from cali.actors.alerter import Alerter
from cali.actors.incident_tracker import IncidentTracker
from cali.actors.supervisor import StreamSupervisor
from cali.config import Settings


def start_pipeline(settings: Settings) -> dict[str, Any]:
    """Creates (or joins) the named, detached actors and starts their loops."""
    r = settings.ray
    common = {"namespace": r.namespace, "get_if_exists": True, "lifetime": "detached", "max_restarts": -1}
    alerter = Alerter.options(name=names.ALERTER, num_cpus=r.alerter_cpus, **common).remote(settings)
    trackers = [IncidentTracker.options(name=names.tracker(i), num_cpus=r.tracker_cpus, **common)
                .remote(settings, i) for i in range(settings.alerting.trackers)]
    supervisor = StreamSupervisor.options(name=names.SUPERVISOR, num_cpus=r.tracker_cpus, **common).remote(settings)
    # Each actor starts its own loop in __init__; waiting for them here means trackers are restored
    # before any reader sends, and start-up errors surface to the caller.
    ray.get([alerter.stats.remote(), supervisor.scan_count.remote()] + [t.stats.remote() for t in trackers])
    return {"alerter": alerter, "trackers": trackers, "supervisor": supervisor}


def _get(name: str, namespace: str) -> Any | None:
    try:
        return ray.get_actor(name, namespace=namespace)
    except ValueError:
        return None


def pipeline_status(settings: Settings, timeout: float = 10.0) -> dict[str, Any]:
    ns = settings.ray.namespace
    out: dict[str, Any] = {"shards": [], "trackers": [], "alerter": None}
    sup = _get(names.SUPERVISOR, ns)
    if sup is not None:
        out["shards"] = ray.get(sup.status.remote(), timeout=timeout)
    for i in range(settings.alerting.trackers):
        t = _get(names.tracker(i), ns)
        if t is not None:
            out["trackers"].append(ray.get(t.stats.remote(), timeout=timeout))
    alerter = _get(names.ALERTER, ns)
    if alerter is not None:
        out["alerter"] = ray.get(alerter.stats.remote(), timeout=timeout)
    return out


def stop_pipeline(settings: Settings, timeout: float = 60.0) -> None:
    """Readers flush and checkpoint, trackers stop ticking, the alerter drains, then all are killed."""
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
            ray.get(t.stop.remote(), timeout=timeout)
            ray.kill(t, no_restart=True)
    alerter = _get(names.ALERTER, ns)
    if alerter is not None:
        ray.get(alerter.stop.remote(), timeout=timeout)
        ray.kill(alerter, no_restart=True)
