"""Shard and tracker-partition leases, KCL style: take what is free, steal only what has expired.

Expiry never compares two machines' clocks: a worker calls a lease expired when it has seen the lease's
counter stand still for the lease time on its own monotonic clock. A holder renews every third of that
time, and gives up (stops writing) once it has not managed to renew for most of it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from cali.core.ports import CheckpointStore, Clock, Lease

log = logging.getLogger(__name__)


class LeaseTaker:
    """Decides, for one worker (`owner`), when a lease may be taken."""

    def __init__(self, store: CheckpointStore, stream: str, owner: str, ttl_s: float, clock: Clock) -> None:
        self.store, self.stream, self.owner, self.ttl_s, self.clock = store, stream, owner, ttl_s, clock
        self._seen: dict[str, tuple[int, float]] = {}  # shard -> (counter, when this worker first saw it)

    def try_take(self, shard_id: str) -> Lease | None:
        """A free lease or our own is taken at once; another worker's once its counter stood still for ttl."""
        lease = self.store.get_lease(self.stream, shard_id)
        if lease.owner is not None and lease.owner != self.owner:
            now = self.clock.monotonic()
            seen = self._seen.get(shard_id)
            if seen is None or seen[0] != lease.counter:
                self._seen[shard_id] = (lease.counter, now)
                return None
            if now - seen[1] < self.ttl_s:
                return None
            log.warning("lease %s/%s held by %s expired (counter %d unchanged for %.0fs): taking it",
                        self.stream, shard_id, lease.owner, lease.counter, now - seen[1])
        taken = self.store.take_lease(self.stream, shard_id, self.owner, lease.counter)
        self._seen.pop(shard_id, None)
        return taken

    def holder_of(self, shard_id: str) -> str | None:
        return self.store.get_lease(self.stream, shard_id).owner


@dataclass
class LeaseHolder:
    """One held lease: renewed from a thread; `lost` is set the moment it can no longer be trusted."""

    store: CheckpointStore
    stream: str
    shard_id: str
    owner: str
    counter: int
    ttl_s: float
    clock: Clock

    def __post_init__(self) -> None:
        self.lost = threading.Event()
        self._last_ok = self.clock.monotonic()
        self._lock = threading.Lock()

    def renew(self) -> bool:
        """One renewal; False (and `lost` set) when another worker has it or renewals failed too long."""
        if self.lost.is_set():
            return False
        try:
            with self._lock:
                new = self.store.renew_lease(self.stream, self.shard_id, self.owner, self.counter)
                if new is not None:
                    self.counter = new
        except Exception as exc:  # the store is unreachable: we may still hold it, until the margin runs out
            if self.clock.monotonic() - self._last_ok > self.ttl_s * 0.8:
                log.warning("lease %s/%s: no renewal for %.0fs (%s); giving it up", self.stream, self.shard_id,
                            self.clock.monotonic() - self._last_ok, exc)
                self.lost.set()
            return not self.lost.is_set()
        if new is None:
            log.warning("lease %s/%s was taken by another worker", self.stream, self.shard_id)
            self.lost.set()
            return False
        self._last_ok = self.clock.monotonic()
        return True

    def keep(self, stop: threading.Event) -> None:
        """Renews every third of the lease time until stopped or lost."""
        while not stop.wait(self.ttl_s / 3) and not self.lost.is_set():
            self.renew()

    def release(self) -> bool:
        """Hands the lease back at once (graceful stop), so the next worker need not wait for expiry."""
        if self.lost.is_set():
            return False
        with self._lock:
            try:
                return self.store.release_lease(self.stream, self.shard_id, self.owner, self.counter)
            except Exception as exc:  # it expires by itself
                log.warning("lease %s/%s not released (%s); it expires in %.0fs", self.stream, self.shard_id,
                            exc, self.ttl_s)
                return False


class LeaseKeeper:
    """Takes one lease, waiting while another worker holds it, then keeps it renewed: `held` says when.

    For what must run once per stream across clusters: a tracker partition, the alerter's drain.
    `on_acquired` runs after each take and before `held` is set (a tracker reloads its state there).
    """

    def __init__(self, store: CheckpointStore, stream: str, key: str, owner: str, ttl_s: float, clock: Clock,
                 on_acquired: Callable[[], object] = lambda: None) -> None:
        self.taker = LeaseTaker(store, stream, owner, ttl_s, clock)
        self.store, self.stream, self.key, self.owner, self.ttl_s, self.clock = store, stream, key, owner, ttl_s, clock
        self.on_acquired = on_acquired
        self.holder: LeaseHolder | None = None
        self.held = threading.Event()
        self.last_error: str | None = None

    def step(self) -> None:
        """One pass: take the lease if not held, renew it if held."""
        if self.holder is None or self.holder.lost.is_set():
            self.held.clear()
            taken = self.taker.try_take(self.key)
            if taken is None:
                return
            holder = LeaseHolder(self.store, self.stream, self.key, self.owner, taken.counter, self.ttl_s,
                                 self.clock)
            self.on_acquired()
            self.holder = holder
            self.held.set()
            log.info("%s holds %s/%s", self.owner, self.stream, self.key)
        elif not self.holder.renew():
            self.held.clear()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.step()
                self.last_error = None
            except Exception as exc:  # the lease table or the state store is down: try again
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("%s cannot take %s yet: %s", self.owner, self.key, exc)
            stop.wait(self.ttl_s / 3 if self.held.is_set() else min(1.0, self.ttl_s / 3))

    def holder_of(self) -> str | None:
        return self.taker.holder_of(self.key)

    def release(self) -> None:
        self.held.clear()
        if self.holder is not None:
            self.holder.release()
