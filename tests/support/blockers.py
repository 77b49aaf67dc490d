"""Sockets that hold a port: one that only listens (the kernel completes connections it never accepts),
one that accepts and never answers. Both are what a start-up must survive and name."""

from __future__ import annotations

import socket
import threading

KINDS = ("listens", "accepts-silently")


class PortBlocker:
    def __init__(self, kind: str, port: int = 0) -> None:
        assert kind in KINDS, kind
        self.kind = kind
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PortBlocker:
        if self.kind == "accepts-silently":
            self._sock.settimeout(0.2)
            self._thread = threading.Thread(target=self._accept, daemon=True)
            self._thread.start()
        return self

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)  # held open, never read, never answered

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        for c in self._held:
            c.close()
        self._sock.close()
