"""Tails one log path across rotations: file generations by inode, complete lines only, event offsets."""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from cali.core.parsing import MultilineJoiner
from cali.ship.offsets import GenOffset

log = logging.getLogger(__name__)

READ_CHUNK = 1024 * 1024
MAX_PARTIAL = 2 * 1024 * 1024  # a "line" this long without "\n" is cut, so memory stays bounded


@dataclass
class Event:
    """One joined event and where it is in its file generation; acked once put or dead-lettered.

    `start` is where its first line begins (the offset to resume from); `origin` is the offset Fluent
    Bit's tail writes as offset_key for the same event: the end of its last line (where the next
    line starts), or for a line before the file's first event start, where that line begins.
    """

    text: str
    gen: Generation
    start: int
    origin: int
    acked: bool = False

    @property
    def log_file(self) -> str:
        return self.gen.opened_at

    def ack(self) -> None:
        self.acked = True
        self.gen.settle()


@dataclass
class Generation:
    """One inode of a path: what was read, what is still in flight, what can be committed."""

    path: str
    dev: int
    ino: int
    fh: BinaryIO
    joiner: MultilineJoiner
    read_pos: int  # bytes consumed as complete lines
    opened_at: str  # the path as configured or matched when first opened: the events' log_file
    partial: bytes = b""
    pending_start: int = 0  # offset of the first line held by the joiner
    inflight: deque[Event] = field(default_factory=deque)
    rotated: bool = False
    last_growth: float = 0.0
    at_eof: bool = False  # rotated, idle and drained: nothing more will come
    closed: bool = False

    def settle(self) -> None:
        while self.inflight and self.inflight[0].acked:
            self.inflight.popleft()

    @property
    def commit_offset(self) -> int:
        if self.inflight:
            return self.inflight[0].start
        if self.joiner.pending:
            return self.pending_start
        return self.read_pos

    @property
    def done(self) -> bool:
        return self.at_eof and not self.inflight and not self.joiner.pending

    def fully_read(self) -> bool:
        return os.fstat(self.fh.fileno()).st_size <= self.read_pos + len(self.partial)

    def close(self) -> None:
        if not self.closed:
            self.fh.close()
            self.closed = True

    def read_lines(self, now: float, budget: Callable[[], bool], emit: Callable[[Event], None]) -> int:
        """Reads complete lines while `budget()` allows; emits joined events. Returns lines consumed."""
        lines = 0
        while budget():
            chunk = self.fh.read(READ_CHUNK)
            if not chunk:
                break
            self.last_growth = now
            data = self.partial + chunk
            pos = self.read_pos
            start = 0
            while True:
                nl = data.find(b"\n", start)
                if nl < 0:
                    break
                self._feed(data[start:nl], pos, now, emit)
                pos += nl + 1 - start
                start = nl + 1
                lines += 1
            self.partial = data[start:]
            self.read_pos = pos
            if len(self.partial) > MAX_PARTIAL:
                self._feed(self.partial, pos, now, emit)
                self.read_pos += len(self.partial)
                self.partial = b""
                lines += 1
        return lines

    def finish(self, now: float, emit: Callable[[Event], None]) -> None:
        """The file was rotated and stayed idle: its last unterminated line is final, flush everything."""
        if self.partial:
            self._feed(self.partial, self.read_pos, now, emit)
            self.read_pos += len(self.partial)
            self.partial = b""
        self.flush(now, emit, force=True)
        self.at_eof = True

    def flush(self, now: float, emit: Callable[[Event], None], force: bool = False) -> None:
        for text in self.joiner.flush(now, force=force):
            event = Event(text, self, self.pending_start, self.read_pos)
            self.inflight.append(event)
            emit(event)

    def _feed(self, raw: bytes, offset: int, now: float, emit: Callable[[Event], None]) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        was_pending = self.joiner.pending
        out = self.joiner.feed(raw.decode("utf-8", "replace"), now)
        for text in out:  # the event held before this line, or else this (orphan) line itself
            event = Event(text, self, self.pending_start if was_pending else offset, offset)
            self.inflight.append(event)
            emit(event)
        if out or not was_pending:
            self.pending_start = offset

    def to_offset(self) -> GenOffset:
        return GenOffset(self.dev, self.ino, self.commit_offset, self.opened_at)


class FileTail:
    """One configured path: its current generation and the rotated ones still being drained."""

    def __init__(self, path: Path, make_joiner: Callable[[], MultilineJoiner], rotate_wait_s: float = 1.0,
                 saved: list[GenOffset] | None = None, label: str | None = None) -> None:
        self.path = Path(path)
        # The path as configured or as the glob matched it: what events carry as log_file, as
        # Fluent Bit's path_key gives the name its glob returned (absolute or relative alike).
        self.label = label or str(path)
        self.make_joiner = make_joiner
        self.rotate_wait_s = rotate_wait_s
        self.current: Generation | None = None
        self.draining: list[Generation] = []
        self._saved = list(saved or [])

    def generations(self) -> list[Generation]:
        return self.draining + ([self.current] if self.current else [])

    @property
    def idle(self) -> bool:
        """Nothing open and nothing owed: the path is gone and everything it held was shipped."""
        return not self._saved and not self.generations()

    def offsets(self) -> list[GenOffset]:
        live = [g.to_offset() for g in self.generations() if not g.closed]
        return live + self._saved  # saved generations not found yet stay owed

    def _open(self, path: Path, offset: int, now: float, opened_at: str) -> Generation | None:
        try:
            fh = open(path, "rb")  # noqa: SIM115 - held open across polls, closed by Generation.close
        except FileNotFoundError:
            return None
        st = os.fstat(fh.fileno())
        if offset > st.st_size:  # truncated while we were away: the old bytes are gone
            log.warning("%s: saved offset %d beyond size %d, reading from 0", path, offset, st.st_size)
            offset = 0
        fh.seek(offset)
        return Generation(path=str(path), dev=st.st_dev, ino=st.st_ino, fh=fh, joiner=self.make_joiner(),
                          read_pos=offset, opened_at=opened_at, pending_start=offset, last_growth=now)

    def _resume_saved(self, now: float) -> None:
        """On start, reopen each saved generation: at the path, or rotated (`<path>.1`, any sibling)."""
        saved, self._saved = self._saved, []
        try:
            cur = os.stat(self.path)
        except FileNotFoundError:
            cur = None
        for g in saved:
            if cur is not None and (cur.st_dev, cur.st_ino) == (g.dev, g.ino) and self.current is None:
                self.current = self._open(self.path, g.offset, now, g.opened_at)
                continue
            found = _find_inode(self.path, g.dev, g.ino)
            gen = self._open(found, g.offset, now, g.opened_at) if found else None
            if gen is None or (gen.dev, gen.ino) != (g.dev, g.ino):
                log.warning("%s: rotated generation inode %d not found (was at offset %d); its unread "
                            "tail is lost", self.path, g.ino, g.offset)
                if gen:
                    gen.close()
                continue
            gen.rotated = True
            self.draining.append(gen)

    def poll(self, now: float, budget: Callable[[], bool], emit: Callable[[Event], None]) -> int:
        """Detects rotation/truncation, reads every live generation, flushes idle joiners."""
        if self._saved:
            self._resume_saved(now)
        lines = 0
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        cur = self.current
        if st is not None and (cur is None or (st.st_dev, st.st_ino) != (cur.dev, cur.ino)):
            if cur is not None:  # rotated: drain the old inode through the fd we hold
                lines += cur.read_lines(now, budget, emit)
                cur.rotated = True
                self.draining.append(cur)
            self.current = self._open(self.path, 0, now, self.label)
        elif st is None and cur is not None and now - cur.last_growth >= self.rotate_wait_s and cur.fully_read():
            # Deleted, or renamed away with nothing new in its place yet: drain it as rotated.
            cur.rotated = True
            self.draining.append(cur)
            self.current = None
        elif st is not None and cur is not None and st.st_size < cur.read_pos + len(cur.partial):
            log.warning("%s truncated in place (copytruncate?) at %d: reading from 0", self.path, cur.read_pos)
            cur.flush(now, emit, force=True)
            cur.close()  # its events still in flight are retried; the file no longer holds them
            self.current = self._open(self.path, 0, now, self.label)
        for gen in self.draining:
            lines += gen.read_lines(now, budget, emit)
            if not gen.at_eof and now - gen.last_growth >= self.rotate_wait_s and gen.fully_read():
                gen.finish(now, emit)
            elif not gen.at_eof:
                gen.flush(now, emit)
        if self.current is not None:
            lines += self.current.read_lines(now, budget, emit)
            self.current.flush(now, emit)
        for gen in [g for g in self.draining if g.done]:
            gen.close()
            self.draining.remove(gen)
        return lines

    def close(self) -> None:
        for gen in self.generations():
            gen.close()


def _find_inode(path: Path, dev: int, ino: int) -> Path | None:
    rotated = path.with_name(path.name + ".1")
    candidates = [rotated] + sorted(p for p in path.parent.glob(path.name + "*") if p != rotated)
    for p in candidates:
        try:
            st = os.stat(p)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (dev, ino):
            return p
    return None
