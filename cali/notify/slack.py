"""Slack notifier: incoming webhook (WebhookClient) or bot token (WebClient.chat_postMessage, threads)."""

from __future__ import annotations

import ipaddress
import logging
import random
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from cali.core.alerts import Alert
from cali.core.ports import DeliveryReceipt, Health
from cali.notify.blocks import render_alert
from cali.notify.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from cali.notify.slack_retry import Random, RetryPolicy, Sleep, parse_retry_after, retry_handlers

log = logging.getLogger(__name__)

REDACTED = "<redacted>"
# Web API errors (HTTP 200, ok=false) that a later attempt may clear; every other error is permanent.
RETRYABLE_API_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_LOOPBACK_HOSTS = frozenset({"localhost"})


class _Redact(logging.Filter):
    """Scrubs secrets from records slack_sdk logs: it puts the full request URL in INFO/DEBUG lines."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def scrub(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.scrub(record.getMessage())
        record.args = None
        return True


_REDACTOR = _Redact()
# Our own logger for slack_sdk: INFO keeps its `logger.level <= DEBUG` dumps (URL, body) switched off,
# and the filter scrubs what it still logs.
_SDK_LOG = logging.getLogger("cali.notify.slack.sdk")
_SDK_LOG.setLevel(logging.INFO)
_SDK_LOG.addFilter(_REDACTOR)


def _secret_parts(url: str) -> Iterable[str]:
    yield url
    path = urlsplit(url).path
    if len(path) > 8:  # the path is the credential (/services/T…/B…/…); the host is public
        yield path
        yield path.lstrip("/")


def check_webhook_url(url: str) -> str | None:
    """Returns what is wrong with an incoming-webhook URL, or None; never echoes the URL."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"not a URL ({type(exc).__name__})"
    host = parts.hostname or ""
    if not host:
        return "has no host (expected https://hooks.slack.com/services/T…/B…/…)"
    loopback = host in _LOOPBACK_HOSTS or _is_loopback_ip(host)
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        return f"scheme is {parts.scheme!r}: Slack webhooks are https (http only for a local receiver)"
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 4 or segments[0] != "services":
        return (
            "path is not /services/<team>/<bot>/<secret>: "
            "copy the URL from the Slack app's Incoming Webhooks page"
        )
    return None


def _is_loopback_ip(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SlackNotifier:
    """Sends alerts to Slack; raises RetryableDeliveryError / PermanentDeliveryError after its own retries.

    Webhook mode posts to an incoming webhook (no ts comes back, so no threads). Bot mode calls
    chat.postMessage on `channel` and returns the message ts, so a summary can go in the thread of its
    incident's first alert: `send(alert, thread_ts=...)`.
    """

    def __init__(
        self,
        *,
        webhook_url: SecretStr | None = None,
        bot_token: SecretStr | None = None,
        channel: str | None = None,
        api_url: str | None = None,  # Web API base, e.g. http://127.0.0.1:5066/api/ for the local receiver
        dashboard_url_template: str | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        rng: Random = random.random,
        name: str = "slack",
    ) -> None:
        if (webhook_url is None) == (bot_token is None):
            raise ValueError(
                "SlackNotifier needs exactly one of webhook_url (webhook mode) or bot_token (bot mode)"
            )
        if bot_token is not None and not channel:
            raise ValueError("SlackNotifier in bot mode needs a channel (an id like C0123456789, or #name)")
        self.name = name
        self.policy = policy or RetryPolicy()
        self.dashboard_url_template = dashboard_url_template
        self.channel = channel
        self._webhook_url = webhook_url
        self._bot_token = bot_token
        self._api_url = api_url
        handlers = retry_handlers(self.policy, sleep, rng)
        timeout = self.policy.timeout
        self._webhook: WebhookClient | None = None
        self._web: WebClient | None = None
        if webhook_url is not None:
            secret = webhook_url.get_secret_value()
            _REDACTOR.secrets.update(_secret_parts(secret))
            # WebhookClient types timeout as int, but hands it to urlopen, which takes seconds as float.
            self._webhook = WebhookClient(
                secret,
                timeout=timeout,
                logger=_SDK_LOG,  # type: ignore[arg-type]
                retry_handlers=handlers,
            )
        else:
            assert bot_token is not None
            _REDACTOR.secrets.add(bot_token.get_secret_value())
            kwargs = {"base_url": api_url} if api_url else {}
            self._web = WebClient(
                token=bot_token.get_secret_value(),
                timeout=timeout,  # type: ignore[arg-type]
                logger=_SDK_LOG,
                retry_handlers=handlers,
                **kwargs,
            )

    @property
    def mode(self) -> str:
        return "webhook" if self._webhook is not None else "bot"

    def send(self, alert: Alert, thread_ts: str | None = None) -> DeliveryReceipt:
        """Posts one alert (incoming webhook POST, or chat.postMessage in bot mode, in thread_ts if given)."""
        try:
            message = render_alert(alert, self.dashboard_url_template)
        except Exception as exc:  # a render bug would fail the same way every time: dead-letter it
            raise PermanentDeliveryError(
                f"Slack {self.mode}: could not render alert {alert.alert_id}: {type(exc).__name__}: {exc}"
            ) from None
        if self._webhook is not None:
            return self._send_webhook(alert, message.text, message.blocks)
        return self._send_bot(alert, message.text, message.blocks, thread_ts)

    def _send_webhook(self, alert: Alert, text: str, blocks: list) -> DeliveryReceipt:
        assert self._webhook is not None
        what = f"Slack incoming webhook POST for alert {alert.alert_id}"
        try:
            resp = self._webhook.send(text=text, blocks=blocks, unfurl_links=False, unfurl_media=False)
        except Exception as exc:
            # Timeouts and connection errors that outlived the retries; the text may name the URL.
            raise RetryableDeliveryError(
                f"{what} failed after {self.policy.max_retries} retries: {type(exc).__name__}: "
                f"{_REDACTOR.scrub(str(exc))}. Check that Slack (or the local receiver) is reachable."
            ) from None
        if resp.status_code == 200:
            return DeliveryReceipt(channel=None, ts=None)
        body = _REDACTOR.scrub(str(resp.body or ""))[:500]
        raise self._http_error(what, resp.status_code, body, resp.headers)

    def _send_bot(self, alert: Alert, text: str, blocks: list, thread_ts: str | None) -> DeliveryReceipt:
        assert self._web is not None
        what = f"Slack chat.postMessage to {self.channel} for alert {alert.alert_id}"
        if thread_ts:
            what += f" (thread_ts={thread_ts})"
        try:
            resp = self._web.chat_postMessage(
                channel=self.channel,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            status = exc.response.status_code
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            error = str(data.get("error", ""))
            body = _REDACTOR.scrub(str(data or exc.response.data))[:500]
            if status == 200:
                cls = RetryableDeliveryError if error in RETRYABLE_API_ERRORS else PermanentDeliveryError
                raise cls(
                    f"{what}: Slack answered ok=false, error={error!r}; response: {body}. {_hint(error)}",
                    status=status,
                    body=body,
                ) from None
            raise self._http_error(what, status, body, exc.response.headers) from None
        except Exception as exc:
            raise RetryableDeliveryError(
                f"{what} failed after {self.policy.max_retries} retries: {type(exc).__name__}: "
                f"{_REDACTOR.scrub(str(exc))}. Check that the Slack Web API is reachable."
            ) from None
        return DeliveryReceipt(channel=resp.get("channel"), ts=resp.get("ts"))

    def _http_error(self, what: str, status: int, body: str, headers: object) -> DeliveryError:
        if status == 429:
            retry_after = parse_retry_after(headers)
            return RetryableDeliveryError(
                f"{what}: HTTP 429 rate limited (Retry-After {retry_after}s, longer than we wait in-line "
                f"or still limited after {self.policy.max_retries} retries); body: {body!r}",
                status=status,
                body=body,
                retry_after=retry_after,
            )
        if 500 <= status <= 599:
            return RetryableDeliveryError(
                f"{what}: HTTP {status} after {self.policy.max_retries} retries; body: {body!r}",
                status=status,
                body=body,
            )
        return PermanentDeliveryError(
            f"{what}: HTTP {status}, body: {body!r}. {_hint(body)}", status=status, body=body
        )

    def healthcheck(self) -> Health:
        """Bot mode: auth.test. Webhook mode: checks the URL's shape only (posting would spam it)."""
        if self._webhook_url is not None:
            problem = check_webhook_url(self._webhook_url.get_secret_value())
            if problem:
                return Health(self.name, False, f"Slack webhook URL {problem}. Set CALI_SLACK__WEBHOOK_URL.")
            host = urlsplit(self._webhook_url.get_secret_value()).hostname
            return Health(
                self.name,
                True,
                f"webhook URL is well-formed (host {host}); not posted to, "
                "since incoming webhooks have no dry-run and a test would show in the channel",
            )
        assert self._bot_token is not None
        kwargs = {"base_url": self._api_url} if self._api_url else {}
        probe = WebClient(
            token=self._bot_token.get_secret_value(), timeout=3, logger=_SDK_LOG, retry_handlers=[], **kwargs
        )
        try:
            resp = probe.auth_test()
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            error = data.get("error", exc.response.status_code)
            return Health(self.name, False, f"Slack auth.test failed: {error}. {_hint(str(error))}")
        except Exception as exc:
            return Health(
                self.name,
                False,
                f"Slack auth.test unreachable: {type(exc).__name__}: {_REDACTOR.scrub(str(exc))}",
            )
        return Health(
            self.name,
            True,
            f"auth.test ok: team {resp.get('team')!r}, user {resp.get('user')!r}; posting to {self.channel}",
        )


_HINTS = {
    "invalid_payload": "The message JSON was rejected: check the rendered blocks against Slack's limits.",
    "invalid_blocks": "A block broke Slack's Block Kit rules: see cali/notify/blocks.py limits.",
    "no_service": "The webhook was removed or disabled: create a new one and update the secret.",
    "no_text": "The message had no text.",
    "channel_not_found": "Check the channel id, and that the bot is invited to it.",
    "not_in_channel": "Invite the bot to the channel (/invite @bot).",
    "invalid_auth": "The bot token is wrong or revoked: update the secret.",
    "not_authed": "No bot token was sent.",
    "account_inactive": "The token belongs to a deleted user or app: reinstall the app.",
}


def _hint(body_or_error: str) -> str:
    for key, hint in _HINTS.items():
        if key in body_or_error:
            return hint
    return "Slack will not accept this request as it is; it goes to the dead-letter list."
