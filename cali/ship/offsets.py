"""The shipper's offsets file: per path, the (dev, inode, offset) of each file generation still owed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson

VERSION = 1


@dataclass(frozen=True)
class GenOffset:
    dev: int
    ino: int
    offset: int  # every byte before this was put on the stream (or dead-lettered)
    opened_at: str  # the path the generation had when first opened; a rotated one now lives elsewhere


class OffsetsFile:
    """JSON written to a temp file, fsynced, renamed over the old one: a crash leaves old or new, never half."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._last: bytes | None = None

    def load(self) -> dict[str, list[GenOffset]]:
        try:
            raw = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"offsets file {self.path} is not valid JSON ({exc}); fix or remove it "
                             f"(removing it re-ships every file from the start)") from exc
        if raw.get("version") != VERSION:
            raise ValueError(f"offsets file {self.path} has version {raw.get('version')!r}, expected {VERSION}")
        return {path: [GenOffset(g["dev"], g["ino"], g["offset"], g.get("opened_at", path)) for g in gens]
                for path, gens in raw.get("files", {}).items()}

    def save(self, files: dict[str, list[GenOffset]]) -> bool:
        """Writes only when something changed; returns whether it wrote."""
        body = orjson.dumps({"version": VERSION, "files": {
            p: [{"dev": g.dev, "ino": g.ino, "offset": g.offset, "opened_at": g.opened_at} for g in gens]
            for p, gens in sorted(files.items())}}, option=orjson.OPT_INDENT_2)
        if body == self._last:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a power cut
        finally:
            os.close(dir_fd)
        self._last = body
        return True
