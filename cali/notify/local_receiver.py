"""A local Slack stand-in: incoming webhooks, chat.postMessage and auth.test, with a scriptable fault plan."""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

# A fault is ("status", code), ("status", code, headers) or ("status", code, headers, body), or
# ("timeout", seconds): hold the request that long and close it unanswered (nothing is recorded).
Fault = tuple[Any, ...]

WEBHOOK_PATH = "/services/T000LOCAL/B000LOCAL/localsecret0000000000000"
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000


def check_blocks(payload: dict[str, Any]) -> str | None:
    """The Slack checks a test can trip over: missing text, too many blocks, and every block through
    slack_sdk's Block Kit models (known type and fields, Slack's length limits)."""
    from slack_sdk.errors import SlackObjectFormationError
    from slack_sdk.models.blocks import Block

    blocks = payload.get("blocks") or []
    if not payload.get("text") and not blocks:
        return "no_text"
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return "invalid_blocks"
    for block in blocks:
        if not isinstance(block, dict):
            return "invalid_blocks"
        text = (block.get("text") or {}).get("text", "")
        if block.get("type") == "section" and len(text) > MAX_SECTION_TEXT:
            return "invalid_blocks"
        try:
            parsed = Block.parse(block)
            if parsed is None:  # a type Block Kit does not know
                return "invalid_blocks"
            parsed.validate_json()
        except (SlackObjectFormationError, KeyError, TypeError, ValueError):
            return "invalid_blocks"
    return None


class LocalSlack:
    """Runs in a thread (start/stop) or as a process; keeps what it received in `.received`."""

    def __init__(self, port: int = 0, log_path: str | Path | None = None, echo: bool = False) -> None:
        self._port = port
        self.log_path = Path(log_path) if log_path else None
        self.echo = echo
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.faults_served: list[Fault] = []

    # -- control -------------------------------------------------------------------------------
    def start(self) -> LocalSlack:
        owner = self

        class Handler(_Handler):
            slack = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True  # a request held by a "timeout" fault must not block stop()
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-slack", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "LocalSlack is not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The incoming-webhook URL to configure (shaped like Slack's, path included)."""
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    @property
    def api_url(self) -> str:
        """Web API base URL for slack_sdk.WebClient(base_url=...)."""
        return f"http://127.0.0.1:{self.port}/api/"

    def script(self, faults: Iterable[Fault]) -> None:
        """Queues responses for the next message posts (webhook or chat.postMessage); then back to 200."""
        with self._lock:
            self._faults.extend(tuple(f) for f in faults)

    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.received)

    # -- used by the handler -------------------------------------------------------------------
    def _next_fault(self) -> Fault | None:
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
            if fault is not None:
                self.faults_served.append(fault)
            return fault

    def _next_ts(self) -> str:
        with self._lock:
            return f"{int(time.time())}.{next(self._ts):06d}"

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.received.append(entry)
            if self.log_path is not None:
                with self.log_path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        if self.echo:
            where = f" thread {entry['thread_ts']}" if entry.get("thread_ts") else ""
            print(f"[local-slack] {entry['via']}{where}: {entry.get('text', '')}", flush=True)


class _Handler(BaseHTTPRequestHandler):
    slack: LocalSlack
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # the request line carries the webhook path; keep it out of stderr

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        if path.startswith("/services/"):
            self._webhook(raw)
        elif path == "/api/chat.postMessage":
            self._post_message(raw)
        elif path == "/api/auth.test":
            self._auth_test()
        elif path.startswith("/api/"):
            self._json(200, {"ok": False, "error": "unknown_method"})
        else:
            self._reply(404, b"not found", "text/plain")

    def _apply_fault(self, api: bool) -> bool:
        """Serves the next scripted fault, if any; True when the request is answered by it."""
        fault = self.slack._next_fault()
        if fault is None:
            return False
        if fault[0] == "timeout":
            time.sleep(float(fault[1]))
            self.close_connection = True
            return True
        status = int(fault[1])
        headers = dict(fault[2]) if len(fault) > 2 and fault[2] else {}
        if status == 200 and len(fault) <= 3:
            return False  # a scripted 200 is the normal answer
        if len(fault) > 3:
            body = str(fault[3]).encode()
        elif api:
            error = "ratelimited" if status == 429 else "internal_error"
            body = json.dumps({"ok": False, "error": error}).encode()
        else:
            body = {429: b"rate_limited", 404: b"no_service"}.get(status, b"internal_error")
        self._reply(status, body, "application/json" if api else "text/plain", headers)
        return True

    def _webhook(self, raw: bytes) -> None:
        try:
            payload = json.loads(raw or b"{}")
        except ValueError:
            self._reply(400, b"invalid_payload", "text/plain")
            return
        problem = check_blocks(payload) if isinstance(payload, dict) else "invalid_payload"
        if problem:
            self._reply(400, problem.encode(), "text/plain")
            return
        if self._apply_fault(api=False):
            return
        self.slack._record(
            {
                "via": "webhook",
                "text": payload.get("text"),
                "blocks": payload.get("blocks"),
                "received_at": time.time(),
            }
        )
        self._reply(200, b"ok", "text/plain")

    def _form_or_json(self, raw: bytes) -> dict[str, Any]:
        if "json" in (self.headers.get("Content-Type") or ""):
            return json.loads(raw or b"{}")
        fields = dict(parse_qsl(raw.decode()))
        if isinstance(fields.get("blocks"), str):
            fields["blocks"] = json.loads(fields["blocks"])
        return fields

    def _authed(self) -> bool:
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
            self._json(200, {"ok": False, "error": "not_authed"})
            return False
        return True

    def _post_message(self, raw: bytes) -> None:
        if not self._authed():
            return
        try:
            payload = self._form_or_json(raw)
        except ValueError:
            self._json(200, {"ok": False, "error": "invalid_json"})
            return
        if not payload.get("channel"):
            self._json(200, {"ok": False, "error": "channel_not_found"})
            return
        problem = check_blocks(payload)
        if problem:
            self._json(200, {"ok": False, "error": problem})
            return
        if self._apply_fault(api=True):
            return
        ts = self.slack._next_ts()
        entry = {
            "via": "chat.postMessage",
            "channel": payload["channel"],
            "text": payload.get("text"),
            "blocks": payload.get("blocks"),
            "thread_ts": payload.get("thread_ts"),
            "ts": ts,
            "received_at": time.time(),
        }
        self.slack._record(entry)
        self._json(
            200,
            {
                "ok": True,
                "channel": payload["channel"],
                "ts": ts,
                "message": {"text": payload.get("text"), "ts": ts, "thread_ts": payload.get("thread_ts")},
            },
        )

    def _auth_test(self) -> None:
        if not self._authed():
            return
        self._json(
            200,
            {
                "ok": True,
                "url": "https://cali-local.slack.com/",
                "team": "CALI local",
                "user": "cali",
                "team_id": "T000LOCAL",
                "user_id": "U000LOCAL",
                "bot_id": "B000LOCAL",
            },
        )

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._reply(status, json.dumps(body).encode(), "application/json; charset=utf-8")

    def _reply(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Slack-compatible webhook receiver for CALI.")
    parser.add_argument("--port", type=int, default=5066, help="0 picks a free port")
    parser.add_argument("--log", default=None, help="append every received message to this JSONL file")
    args = parser.parse_args(argv)
    slack = LocalSlack(port=args.port, log_path=args.log, echo=True).start()
    print(
        f"local Slack on http://127.0.0.1:{slack.port}: webhook {slack.url}, Web API {slack.api_url}",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        slack.stop()


if __name__ == "__main__":
    main()
