"""Streaming template miner: masks variables, then merges same-shape messages into stable groups."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cali.grouping.masking import mask

WILDCARD = "<*>"
STATE_VERSION = 2
# Digits are always variables, so messages that differ only in their digits are one event: the
# message with every run of digits shortened to "1" is a cache key that skips the regexes. (The
# replaces shorten runs of up to 31 digits to one; longer runs just make a few more keys.)
_DIGITS = bytes.maketrans(b"0123456789", b"1111111111")


def digit_blind(message: str) -> bytes:
    """The cache key of a message: its bytes with each run of digits shortened to one "1"."""
    key = message.encode().translate(_DIGITS)
    return key.replace(b"1111", b"1").replace(b"11", b"1").replace(b"11", b"1").replace(b"11", b"1")

# A token is a word (letters, digits and the joiners of names, paths and placeholders) or one
# punctuation mark, each with the whitespace before it, so "".join(tokens) gives the text back.
_TOKEN = re.compile(r"\s*(?:<\w+>|[\w.\-/@#$%&*+~^!?<>]+|[^\w\s])")


_CLOSER = {"(": ")", "[": "]", "{": "}"}
# An empty value between brackets, as in "from 10.0.0.1 () at", is still a value: it gets a token
# that renders as nothing, so "()" and "(host)" have the same shape.
EMPTY = ""


def tokenize(masked: str) -> list[str]:
    """Split a masked message into tokens that keep one leading space when they had any."""
    out: list[str] = []
    for raw in _TOKEN.findall(masked):
        token = " " + raw.lstrip() if raw[0].isspace() else raw
        if out:
            prev = out[-1]
            # A space-separated run of one placeholder is one list value: "delete <id> <id> <id>".
            if token[0] == " " and _is_variable(token) and token == (prev if prev[0] == " " else " " + prev):
                continue
            if token == _CLOSER.get(prev.lstrip()):
                out.append(EMPTY)
        out.append(token)
    return out


def _is_word(token: str) -> bool:
    if token == EMPTY:
        return True
    c = token.lstrip()[:1]
    return c.isalnum() or c in "_<"


def _is_variable(token: str) -> bool:
    t = token.lstrip()
    return t.startswith("<") and t.endswith(">") and len(t) > 2


class Match(NamedTuple):
    group_id: str
    template: str


@dataclass(frozen=True)
class MinerConfig:
    """The one generic setting for every source."""

    similarity: float = 0.7  # share of a template's words a message must match to join it
    max_groups: int = 10_000  # least recently matched groups beyond this are forgotten
    cache_size: int = 100_000  # digit-blind message -> group entries, oldest dropped first


class _Group:
    __slots__ = ("gid", "tokens", "size", "seen", "match")

    def __init__(self, gid: str, tokens: list[str], size: int = 0) -> None:
        self.gid = gid
        self.tokens = tokens
        self.size = size
        self.seen = 0
        self.match = Match(gid, "".join(tokens).strip())


def _age(group: _Group) -> int:
    return group.seen


class TemplateMiner:
    """One pass, bounded memory: at most `max_groups` groups and `cache_size` cache entries."""

    def __init__(self, config: MinerConfig | None = None) -> None:
        self.config = config or MinerConfig()
        self._groups: dict[str, _Group] = {}
        self._by_shape: dict[tuple, list[str]] = {}
        self._cache: dict[bytes | str, str] = {}
        self._next = 1
        self._clock = 0

    def __len__(self) -> int:
        return len(self._groups)

    def add(self, message: str) -> Match:
        """Assign `message` to a group (new or existing) and return the group id and template."""
        self._clock += 1
        key = digit_blind(message)
        group = self._groups.get(self._cache.get(key, ""))
        if group is None:
            masked = mask(message)
            group = self._groups.get(self._cache.get(masked, ""))
            if group is None:
                tokens = tokenize(masked)
                group = self._best(tokens)
                if group is None:
                    group = self._create(tokens)
                else:
                    self._merge(group, tokens)
                self._remember(masked, group.gid)
            self._remember(key, group.gid)
        group.size += 1
        group.seen = self._clock
        return group.match

    def groups(self) -> list[Match]:
        return [g.match for g in self._groups.values()]

    def _remember(self, key: bytes | str, gid: str) -> None:
        cache = self._cache
        cache[key] = gid
        if len(cache) > self.config.cache_size:
            del cache[next(iter(cache))]

    # -- matching ----------------------------------------------------------------------------
    @staticmethod
    def _shape(tokens: list[str]) -> tuple:
        return (len(tokens), "".join(t for t in tokens if not _is_word(t)))

    def _best(self, tokens: list[str]) -> _Group | None:
        best, best_sim = None, -1.0
        for gid in self._by_shape.get(self._shape(tokens), ()):
            group = self._groups[gid]
            sim = self._similarity(group.tokens, tokens)
            if sim > best_sim:
                best, best_sim = group, sim
        return best if best is not None and best_sim >= self.config.similarity else None

    @staticmethod
    def _similarity(template: list[str], tokens: list[str]) -> float:
        words = same = 0
        for a, b in zip(template, tokens, strict=True):
            if not _is_word(a):
                continue
            words += 1
            if a == b or a.lstrip() == WILDCARD:
                same += 1
            elif words == 1 and a.lstrip().isalpha() and b.lstrip().isalpha():
                # A first word in plain letters names the event ("creating" / "removing device
                # node"); one with dots or digits ("chrome.exe - ...") may be a variable.
                return 0.0
        return same / words if words else 1.0

    def _merge(self, group: _Group, tokens: list[str]) -> None:
        changed = False
        for i, (a, b) in enumerate(zip(group.tokens, tokens, strict=True)):
            if a != b and a.lstrip() != WILDCARD:
                group.tokens[i] = (" " if a[:1] == " " else "") + WILDCARD
                changed = True
        if changed:
            group.match = Match(group.gid, "".join(group.tokens).strip())

    def _create(self, tokens: list[str]) -> _Group:
        gid = f"g{self._next}"
        self._next += 1
        group = _Group(gid, list(tokens))
        self._groups[gid] = group
        self._by_shape.setdefault(self._shape(tokens), []).append(gid)
        if len(self._groups) > self.config.max_groups:
            self._evict()
        return group

    def _evict(self) -> None:
        # Forget the least recently matched tenth at once, so eviction costs O(1) per message on
        # average; cache entries pointing at a forgotten group simply miss.
        by_age = sorted(self._groups.values(), key=_age)
        for group in by_age[: max(1, len(by_age) // 10)]:
            del self._groups[group.gid]
            self._by_shape[self._shape(group.tokens)].remove(group.gid)

    # -- persistence -------------------------------------------------------------------------
    def to_state(self) -> dict:
        """{"meta": small, "groups": {id: {...}}}: a group's dict changes only when its template does."""
        return {
            "meta": {"version": STATE_VERSION, "next": self._next,
                     "config": {k: getattr(self.config, k) for k in MinerConfig.__dataclass_fields__}},
            # Least recently matched first, so a restore keeps the eviction order.
            "groups": {g.gid: {"tokens": g.tokens} for g in sorted(self._groups.values(), key=_age)},
        }

    @classmethod
    def from_state(cls, state: dict) -> TemplateMiner:
        meta = state["meta"]
        if meta.get("version") != STATE_VERSION:
            raise ValueError(f"miner state version {meta.get('version')!r}, expected {STATE_VERSION}")
        miner = cls(MinerConfig(**meta["config"]))
        miner._next = meta["next"]
        for gid, group_state in state["groups"].items():
            group = _Group(gid, list(group_state["tokens"]))
            miner._groups[gid] = group
            miner._clock += 1
            group.seen = miner._clock
            miner._by_shape.setdefault(cls._shape(group.tokens), []).append(gid)
        return miner

    def resolve(self, group_id: str) -> str:
        """The canonical id of a group id this miner returned (ids are never merged here)."""
        return group_id

    def drain_merges(self) -> list[tuple[str, str]]:
        return []

    def save(self, path: Path | str) -> None:
        # Write then rename, so a crash mid-save leaves the previous state intact.
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_state()), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path | str) -> TemplateMiner:
        return cls.from_state(json.loads(Path(path).read_text(encoding="utf-8")))
