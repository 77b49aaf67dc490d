"""Rich renderables for the live demo and `cali status`."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table


def shard_table(shards: list[dict[str, Any]]) -> Table:
    t = Table("shard", "state", "records", "rec/s", "behind ms", "dlq", "dups", "candidates", "last checkpoint",
              "restarts", title="Kinesis shards (one ShardReader actor each)")
    for s in shards:
        cp = s.get("last_checkpoint") or "-"
        t.add_row(s["shard_id"], s.get("state", "?"), str(s.get("records", 0)), str(s.get("records_per_s", 0)),
                  str(s.get("millis_behind_latest", "-")), str(s.get("dead", 0)), str(s.get("duplicates", 0)),
                  str(s.get("candidates", 0)), f"…{cp[-12:]}" if len(cp) > 12 else cp, str(s.get("restarts", 0)))
    return t


def alerts_table(received: list[dict[str, Any]], limit: int = 8) -> Table:
    t = Table("#", "alert (as Slack received it)", title=f"Slack: {len(received)} messages received")
    for i, msg in enumerate(received[-limit:], start=max(1, len(received) - limit + 1)):
        text = (msg.get("text") or "").replace("\n", " ")
        t.add_row(str(i), text[:150])
    return t


def live_view(counts: dict[str, Any], shards: list[dict[str, Any]], received: list[dict[str, Any]],
              dashboard: str) -> Group:
    head = " · ".join(f"{k} [bold]{v}[/bold]" for k, v in counts.items())
    return Group(Panel(f"{head}\nRay dashboard: {dashboard}", title="CALI demo (Ctrl-C stops)"),
                 shard_table(shards), alerts_table(received))
