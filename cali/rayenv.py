"""The environment a local Ray needs before `import ray`: every listener on loopback, token authentication."""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import MutableMapping
from typing import Any

from cali.startup import StartupError

# Ray picks the node IP, and with it the bind address of the GCS, raylet, agents and every worker, from a
# constant it reads from this variable when `ray` is first imported. 0 makes it 127.0.0.1 (measured
# with Ray 2.60: 36 listeners on all interfaces without it, none with it but the Serve replicas').
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# Ray Serve 2.60 binds each replica's inter-deployment gRPC server to [::]:0 whatever the node IP
# (ray-project/ray#64544). With token authentication that server refuses every call without the
# cluster's token before reading it (UNAUTHENTICATED); with RAY_AUTH_MODE=disabled it unpickles
# whatever a stranger sends. ray.init() turns it on for a new local cluster when the variable is unset;
# setting it explicitly keeps it on and drops Ray's start-up warning about it.
AUTH_ENV = {"RAY_AUTH_MODE": "token"}


class RayEnvError(StartupError):
    """A local Ray would listen beyond loopback or accept strangers; the message is one line."""


def is_local(address: str | None, environ: MutableMapping[str, str] = os.environ) -> bool:
    """True when cali would start (or join) a Ray on this machine rather than a configured cluster."""
    return not address and not environ.get("RAY_ADDRESS")


def prepare(address: str | None, environ: MutableMapping[str, str] = os.environ) -> bool:
    """Call from an entry point before anything imports ray; returns whether it set the local env.

    A configured cluster (`CALI_RAY__ADDRESS`, `RAY_ADDRESS`) is left alone: a driver on a cluster
    node must see the node's own IP, and the cluster's NetworkPolicy, not loopback, bounds it.
    """
    if not is_local(address, environ):
        return False
    environ.update(LOOPBACK_ENV)
    for key, value in AUTH_ENV.items():
        environ.setdefault(key, value)
    return True


def check_before_start(environ: MutableMapping[str, str] = os.environ) -> None:
    """Before ray.init starts a local Ray: raises RayEnvError if it would bind beyond loopback."""
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None and getattr(constants, "ENABLE_RAY_CLUSTER", False):
        raise RayEnvError(
            "Ray was imported before RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 was set, so it would listen on every "
            "interface: start it through `cali`, or export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 first")
    mode = environ.get("RAY_AUTH_MODE", AUTH_ENV["RAY_AUTH_MODE"]).lower()
    if mode != AUTH_ENV["RAY_AUTH_MODE"]:
        raise RayEnvError(
            f"RAY_AUTH_MODE={mode} would let anyone who reaches this machine call the Ray Serve replicas, "
            "which listen on all interfaces: unset RAY_AUTH_MODE (cali sets it to token)")


def check_after_start(ray: Any) -> None:
    """After a local ray.init: the node must be on loopback, or nothing else should be started."""
    ip = ray.util.get_node_ip_address()
    if not ipaddress.ip_address(ip).is_loopback:
        raise RayEnvError(f"the local Ray took node IP {ip}, not 127.0.0.1: export "
                          "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before starting cali")
