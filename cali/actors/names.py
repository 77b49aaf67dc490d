"""Ray actor names, so the Ray dashboard reads like the design."""

SUPERVISOR = "stream-supervisor"
ALERTER = "alerter"
ALERTER_LEASE = "~alerter"  # the lease-table row of the one outbox drain


def shard_reader(shard_id: str) -> str:
    return f"shard-reader:{shard_id}"


def tracker(index: int) -> str:
    return f"incident-tracker:{index}"


def tracker_partition(index: int) -> str:
    """The lease-table row of tracker partition `index` (beside the shards: "~" is not in a shard id)."""
    return f"~tracker-{index}"
