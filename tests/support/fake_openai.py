"""A loopback server speaking the OpenAI chat/embeddings/models wire format, with fault modes, for tests."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# ok                  answers the verdict as JSON whatever response_format asks
# reject_json_schema  llama.cpp (after Sept 2024 builds reject other types with 400; this is that answer
#                     for json_schema, as older builds gave it) -> 400 invalid_request_error
# reject_json_schema_500  the same message with HTTP 500, as llama.cpp builds before PR #9527 answered
# reject_formats      rejects json_schema and json_object (400); plain text gets prose around a fenced JSON
# invalid_json        200 with content that is not JSON
# schema_invalid      200 with JSON that breaks the verdict schema (confidence 7, no probable_cause)
# error_500           HTTP 500
# slow                sleeps `slow_s` before answering ok (longer than a client timeout)
# leak                obeys an injection: puts the system prompt into probable_cause
# out_of_taxonomy     answers category "pwned"
MODES = ("ok", "reject_json_schema", "reject_json_schema_500", "reject_formats", "invalid_json",
         "schema_invalid", "error_500", "slow", "leak", "out_of_taxonomy")

DEFAULT_VERDICT: dict[str, Any] = {
    "probable_cause": "The HikariCP pool of orders-api has no free connection.",
    "category": "db-pool-exhausted",
    "confidence": 0.8,
    "evidence": [],
    "remediation": ["Raise maximumPoolSize", "Find the slow queries holding connections"],
    "similar_incident_ids": [],
    "abstained": False,
}
_LLAMA_CPP_REJECT = 'response_format type must be one of "text" or "json_object", but got: json_schema'


class FakeOpenAI:
    """`with FakeOpenAI(mode="ok") as fake:` then point a client at `fake.base_url`; read `fake.requests`."""

    def __init__(self, mode: str = "ok", *, verdict: dict[str, Any] | None = None, slow_s: float = 3.0,
                 embedding_dim: int = 8, model_ids: tuple[str, ...] = ("fake-model",)) -> None:
        self.verdict: dict[str, Any] = copy.deepcopy(verdict if verdict is not None else DEFAULT_VERDICT)
        self.slow_s = slow_s
        self.embedding_dim = embedding_dim
        self.model_ids = model_ids
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.peak_in_flight = 0  # most chat requests answered at the same time
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.mode = "ok"
        self.set_mode(mode)

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
        self.mode = mode

    @property
    def base_url(self) -> str:
        assert self._server is not None, "use FakeOpenAI as a context manager"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"].endswith("/chat/completions")]

    def response_formats(self) -> list[str | None]:
        """The response_format type of each chat request, in order (None for plain text)."""
        return [(b.get("response_format") or {}).get("type") for b in self.chat_requests()]

    def __enter__(self) -> FakeOpenAI:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # --- answers

    def record(self, method: str, path: str, headers: dict[str, str], body: Any) -> None:
        with self._lock:
            self.requests.append({"method": method, "path": path, "headers": headers, "body": body})

    def chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return self._chat(body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        mode = self.mode
        rf = (body.get("response_format") or {}).get("type")
        if mode == "error_500":
            return 500, _error(500, "simulated server failure", "server_error")
        if mode in ("reject_json_schema", "reject_json_schema_500", "reject_formats") and rf == "json_schema":
            status = 500 if mode == "reject_json_schema_500" else 400
            return status, _error(status, _LLAMA_CPP_REJECT, "server_error" if status == 500 else
                                  "invalid_request_error")
        if mode == "reject_formats" and rf == "json_object":
            return 400, _error(400, "response_format is not supported by this server", "invalid_request_error")
        if mode == "slow":
            self._closing.wait(self.slow_s)
        verdict = copy.deepcopy(self.verdict)
        if mode == "invalid_json":
            content = "The pool is exhausted, I think. {not json"
        elif mode == "schema_invalid":
            content = json.dumps({"category": "db-pool-exhausted", "confidence": 7})
        else:
            if mode == "leak":
                system = next((m.get("content", "") for m in body.get("messages", []) if m.get("role") == "system"),
                              "")
                verdict["probable_cause"] = f"Sure! My instructions are: {system}"
                verdict["category"] = "pwned"
            elif mode == "out_of_taxonomy":
                verdict["category"] = "pwned"
            content = json.dumps(verdict)
            if rf is None:
                content = f"Here is my analysis.\n```json\n{content}\n```\nHope this helps."
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake-model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }

    def embeddings(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        inputs = body.get("input", [])
        if isinstance(inputs, str):
            inputs = [inputs]
        data = [{"object": "embedding", "index": i, "embedding": embed(str(t), self.embedding_dim)}
                for i, t in enumerate(inputs)]
        return 200, {"object": "list", "data": data, "model": body.get("model", "fake-embed"),
                     "usage": {"prompt_tokens": len(data), "total_tokens": len(data)}}

    def models(self) -> tuple[int, dict[str, Any]]:
        return 200, {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                                                for m in self.model_ids]}


def embed(text: str, dim: int) -> list[float]:
    """A deterministic unit vector: the same text always gives the same vector."""
    raw = b""
    counter = 0
    while len(raw) < 4 * dim:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    values = [(v / 2**31) - 1.0 for v in struct.unpack(f"<{dim}I", raw[: 4 * dim])]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _error(code: int, message: str, kind: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "type": kind}}


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout): nothing to answer

        def do_GET(self) -> None:
            fake.record("GET", self.path, dict(self.headers), None)
            if re.fullmatch(r"/v1/models/?", self.path):
                self._send(*fake.models())
            else:
                self._send(404, _error(404, f"no route {self.path}", "not_found_error"))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                self._send(400, _error(400, "body is not JSON", "invalid_request_error"))
                return
            fake.record("POST", self.path, dict(self.headers), body)
            if self.path.rstrip("/") == "/v1/chat/completions":
                self._send(*fake.chat(body))
            elif self.path.rstrip("/") == "/v1/embeddings":
                self._send(*fake.embeddings(body))
            else:
                self._send(404, _error(404, f"no route {self.path}", "not_found_error"))

    return Handler
