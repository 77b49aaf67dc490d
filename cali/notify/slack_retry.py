"""Retry policy for Slack calls, built on slack_sdk's own retry handlers (capped backoff, jitter, 429)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.client import RemoteDisconnected
from urllib.error import URLError

from slack_sdk.http_retry import HttpRequest as RetryRequest
from slack_sdk.http_retry import HttpResponse as RetryResponse
from slack_sdk.http_retry import RetryHandler, RetryIntervalCalculator, RetryState
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

Sleep = Callable[[float], None]
Random = Callable[[], float]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one send tries before it hands the alert back to the outbox.

    The retry counter is shared by all handlers, so one send makes at most 1 + max_retries HTTP
    attempts whatever mix of timeouts, 5xx and 429 it meets. Waits: 5xx and connection errors back off
    exponentially, min(max_delay, base_delay * 2**n), with "equal jitter" (half fixed, half random);
    a 429 waits its Retry-After plus up to rate_limit_jitter seconds. A Retry-After longer than
    max_retry_after is not waited for here: the send fails as retryable, and the delivery loop waits.
    """

    max_retries: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    rate_limit_jitter: float = 0.5
    timeout: float = 5.0  # per HTTP attempt, seconds


def backoff_delay(policy: RetryPolicy, attempt: int, rng: Random = random.random) -> float:
    """Seconds to wait before retry number `attempt` (0-based): capped exponential, equal jitter."""
    ceiling = min(policy.max_delay, policy.base_delay * (2**attempt))
    return ceiling / 2 + rng() * ceiling / 2


def parse_retry_after(headers: object) -> float | None:
    """Retry-After in seconds from a header mapping (values may be lists), or None if absent/invalid.

    Slack sends an integer; a decimal is accepted too.
    """
    items = headers.items() if hasattr(headers, "items") else []
    for name, value in items:
        if str(name).lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(raw))
            except (TypeError, ValueError):
                return None
    return None


def retry_after_seconds(response: RetryResponse | None, default: float = 1.0) -> float:
    """Reads Retry-After from a slack_sdk retry response; `default` when it has none."""
    value = parse_retry_after(response.headers) if response is not None else None
    return default if value is None else value


class CappedBackoff(RetryIntervalCalculator):
    def __init__(self, policy: RetryPolicy, rng: Random) -> None:
        self.policy = policy
        self.rng = rng

    def calculate_sleep_duration(self, current_attempt: int) -> float:
        return backoff_delay(self.policy, current_attempt, self.rng)


class _SleepsVia:
    """Mixin: the library handlers call time.sleep; ours call an injected sleep so tests do not wait."""

    sleep: Sleep
    interval_calculator: RetryIntervalCalculator

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: RetryRequest,
        response: RetryResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        self.sleep(self.interval_calculator.calculate_sleep_duration(state.current_attempt))
        state.increment_current_attempt()


class ServerErrors(_SleepsVia, ServerErrorRetryHandler):
    """Any 5xx (the builtin handler retries only 500 and 503; Slack also answers 502 and 504)."""

    def __init__(self, policy: RetryPolicy, sleep: Sleep, rng: Random) -> None:
        super().__init__(max_retry_count=policy.max_retries, interval_calculator=CappedBackoff(policy, rng))
        self.sleep = sleep

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:  # noqa: ANN001
        return response is not None and 500 <= response.status_code <= 599


class ConnectionErrors(_SleepsVia, ConnectionErrorRetryHandler):
    """Refused, reset, and timed-out connections (the builtin list misses read timeouts)."""

    def __init__(self, policy: RetryPolicy, sleep: Sleep, rng: Random) -> None:
        super().__init__(
            max_retry_count=policy.max_retries,
            interval_calculator=CappedBackoff(policy, rng),
            error_types=[URLError, ConnectionError, RemoteDisconnected, TimeoutError],
        )
        self.sleep = sleep


class RateLimited(RateLimitErrorRetryHandler):
    """429: waits Retry-After (+ jitter) when it is short enough to wait for in-line."""

    def __init__(self, policy: RetryPolicy, sleep: Sleep, rng: Random) -> None:
        super().__init__(max_retry_count=policy.max_retries)
        self.policy = policy
        self.sleep = sleep
        self.rng = rng

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:  # noqa: ANN001
        if response is None or response.status_code != 429:
            return False
        return retry_after_seconds(response) <= self.policy.max_retry_after

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: RetryRequest,
        response: RetryResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        self.sleep(retry_after_seconds(response) + self.rng() * self.policy.rate_limit_jitter)
        state.increment_current_attempt()


def retry_handlers(
    policy: RetryPolicy, sleep: Sleep = time.sleep, rng: Random = random.random
) -> list[RetryHandler]:
    """Handlers for WebhookClient / WebClient; the first that accepts a failure decides the wait."""
    return [
        RateLimited(policy, sleep, rng),
        ServerErrors(policy, sleep, rng),
        ConnectionErrors(policy, sleep, rng),
    ]
