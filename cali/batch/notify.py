"""A failed quality check becomes one alert, through the outbox like every alert.

The alert goes into the outbox; the pipeline's Alerter delivers it. When no Alerter holds the outbox
(`cali batch run` on a laptop, a DAG run with the pipeline stopped) this process takes the Alerter's
lease for a moment and delivers just that alert with the same DeliveryLoop, so it is never sent twice.
"""

from __future__ import annotations

import hashlib
import logging
import socket
from datetime import datetime
from typing import Any

from cali.batch.quality import DAY_SUITE_NAME
from cali.core.alerts import Alert, AlertKind, Severity
from cali.core.fingerprint import incident_fingerprint, incident_key
from cali.core.ports import Clock, DeliveryReceipt
from cali.core.records import Level

log = logging.getLogger(__name__)
SERVICE = "cali-batch"
ALERTER_LEASE = "~alerter"  # cali.actors.names.ALERTER_LEASE (not imported: that package needs Ray)


def quality_alert(quality: dict[str, Any], now: datetime, env: str | None = None,
                  report_uri: str | None = None) -> Alert | None:
    """The alert for a day whose critical checks failed, else None. Its id names the day and what failed,
    so a re-run with the same failures is delivered once, and a different failure alerts again."""
    failed = [c for c in quality["checks"] if not c["success"] and c["severity"] == "critical"]
    if not failed:
        return None
    day = quality["day"]
    lines = [f"{c['check']}: " + (f"observed {(c.get('sample') or [c.get('observed_value')])[0]}"
                                  if c.get("suite") == DAY_SUITE_NAME or c.get("unexpected_count") is None
                                  else f"{c['unexpected_count']} record(s)") for c in failed]
    digest = hashlib.blake2b("\n".join(sorted(lines)).encode(), digest_size=6).hexdigest()
    key = incident_key(SERVICE, Level.ERROR.value, "quality")
    message = (f"Data quality failed for the archive of {day}: {len(failed)} check(s) failed on "
               f"{quality['records']} record(s) (DLQ ratio {quality['dlq_ratio']:.4f}).")
    if report_uri:
        message += f" Report: {report_uri}"
    return Alert(alert_id=f"quality:{day}:{digest}", kind=AlertKind.FIRST, incident_key=key,
                 fingerprint=incident_fingerprint(key), service=SERVICE, level=Level.ERROR, severity=Severity.HIGH,
                 message=message, template="Data quality failed for the archive of <day>", stack_head=lines,
                 count=len(failed), window_seconds=86_400, first_seen=now, last_seen=now, created_at=now, env=env)


class _OneAlert:
    """The outbox seen through one alert: DeliveryLoop drains exactly it (other alerts wait for the Alerter)."""

    def __init__(self, outbox: Any, alert: Alert) -> None:
        self.outbox, self.alert, self.done = outbox, alert, False

    def pending(self, limit: int) -> list[Alert]:
        return [] if self.done or self.outbox.receipt(self.alert.alert_id) else [self.alert]

    def mark_delivered(self, alert_id: str, receipt: DeliveryReceipt) -> None:
        self.outbox.mark_delivered(alert_id, receipt)
        self.done = True

    def mark_failed(self, alert_id: str, reason: str) -> None:
        self.outbox.mark_failed(alert_id, reason)
        self.done = True

    def receipt(self, alert_id: str) -> DeliveryReceipt | None:
        return self.outbox.receipt(alert_id)

    def thread_parent_id(self, incident_key: str) -> str | None:
        return None

    def healthcheck(self) -> Any:
        return self.outbox.healthcheck()


def enqueue_and_deliver(alert: Alert, outbox: Any, notifier_factory: Any, checkpoints: Any, stream: str,
                        lease_ttl_s: float, clock: Clock) -> str:
    """Outbox.enqueue, then delivery here if the Alerter's lease is free; returns what happened."""
    from cali.notify.delivery import DeliveryLoop
    from cali.service.leases import LeaseHolder, LeaseTaker

    outbox.enqueue([alert])
    if outbox.receipt(alert.alert_id) is not None:
        return "delivered before"  # a re-run of the day with the same failures
    owner = f"cali-batch:{socket.gethostname()}"
    try:
        lease = LeaseTaker(checkpoints, stream, owner, lease_ttl_s, clock).try_take(ALERTER_LEASE)
    except Exception as exc:  # no access to the lease table (an Airflow worker's role): the Alerter delivers
        log.warning("quality alert %s queued; cannot check the alerter lease (%s)", alert.alert_id, exc)
        return "queued"
    if lease is None:
        return "queued"  # an Alerter holds the outbox: it delivers the alert in order
    holder = LeaseHolder(checkpoints, stream, ALERTER_LEASE, owner, lease.counter, lease_ttl_s, clock)
    try:
        loop = DeliveryLoop(_OneAlert(outbox, alert), notifier_factory(), clock, pause_after_failure=0.0)
        delivered = loop.drain(1)
    finally:
        holder.release()
    if delivered:
        return "delivered"
    log.warning("quality alert %s queued, delivery failed: %s", alert.alert_id, loop.stats.last_error)
    return "queued"
