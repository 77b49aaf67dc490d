"""Ray actor names, so the Ray dashboard reads like the design."""

SUPERVISOR = "stream-supervisor"
ALERTER = "alerter"


def shard_reader(shard_id: str) -> str:
    return f"shard-reader:{shard_id}"


def tracker(index: int) -> str:
    return f"incident-tracker:{index}"
