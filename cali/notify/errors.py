"""Delivery errors a notifier raises, split by what the delivery loop should do next."""

from __future__ import annotations


class DeliveryError(Exception):
    """A notifier gave up on one alert; `retryable` says whether a later drain may succeed."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.retry_after = retry_after  # seconds the receiver asked us to wait, if it said


class RetryableDeliveryError(DeliveryError):
    """Timeouts, 5xx, 429 after the notifier's own retries: keep the alert and stop this drain."""

    retryable = True


class PermanentDeliveryError(DeliveryError):
    """A request the receiver will never accept (4xx other than 429): dead-letter it and move on."""

    retryable = False
