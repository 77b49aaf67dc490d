"""What a ShardReader reports about its shard (`cali status`, the demo view, liveness, metrics)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class ReaderStatus:
    shard_id: str
    # starting | reading | throttled | alert-ahead | waiting-for-trackers | error | shard_end | stopped | lease_lost
    state: str = "starting"
    records: int = 0
    valid: int = 0
    dead: int = 0
    duplicates: int = 0  # producers' retries recognised by origin and dropped
    candidates: int = 0
    set_aside: int = 0  # candidates the trackers kept failing on: in the DLQ, not in any incident
    skipped: int = 0  # records read in alert-ahead (alerted, not kept): they are read again
    archived: int = 0
    archived_objects: int = 0
    pending_bytes: int = 0  # rows read but not yet archived
    sealed_batches: int = 0
    alert_ahead: bool = False
    millis_behind_latest: int | None = None
    records_per_s: float = 0.0
    last_checkpoint: str | None = None
    last_checkpoint_at: str | None = None
    throttled: int = 0
    errors: int = 0
    last_error: str | None = None
    owner: str | None = None
    started_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
