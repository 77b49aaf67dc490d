"""Streaming template miner: an id at once for every message, then consolidation into events with aliases."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

from cali.grouping.consolidate import generalize, partition
from cali.grouping.masking import masker
from cali.grouping.tokens import WILDCARD, digit_blind, has_placeholder, tokenize, unit_matches

STATE_VERSION = 2


class Match(NamedTuple):
    group_id: str
    template: str


@dataclass(frozen=True)
class MinerConfig:
    """The one generic setting for every source (`disabled` names rules switched off, for ablations)."""

    min_diversity: int = 3  # distinct values that make a position a variable
    min_constant: float = 0.5  # share of its wording a template keeps where it differs
    max_groups: int = 10_000  # least recently matched groups beyond this are forgotten
    cache_size: int = 100_000  # message -> group entries, oldest dropped first
    max_aliases: int = 200  # merged ids remembered per group, oldest forgotten first
    max_chars: int = 2_048  # longer messages are cut: the head names the event
    disabled: tuple[str, ...] = ()

    def enabled(self, rule: str) -> bool:
        return rule not in self.disabled


class _Group:
    __slots__ = ("gid", "tokens", "stars", "seen", "match", "aliases", "into", "gone")

    def __init__(self, gid: str, tokens: list[str]) -> None:
        self.gid = gid
        self.seen = 0
        self.aliases: list[str] = []
        self.into: _Group | None = None  # set when merged into another group
        self.gone = False  # set when forgotten
        self.retemplate(tokens)

    def retemplate(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.stars = [p for p, t in enumerate(tokens) if WILDCARD in t]  # units with a wildcard
        self.match = Match(self.gid, " ".join(tokens))


class _Bucket:
    """The groups whose templates have one length, and how many arrived since the bucket was last
    consolidated whole. Past `INDEXED` groups they are indexed by unit and position, so that a
    newcomer meets only the groups that share units with it, not all of them."""

    __slots__ = ("groups", "fresh", "index", "wild")
    INDEXED = 32

    def __init__(self) -> None:
        self.groups: list[_Group] = []
        self.fresh = 0
        self.index: list[dict[str, set[_Group]]] | None = None
        self.wild: set[_Group] = set()  # groups with wildcards in half their units or more

    def add(self, group: _Group) -> None:
        self.groups.append(group)
        if self.index is not None:
            self.enter(group)
        elif len(self.groups) > self.INDEXED:
            self.index = [{} for _ in group.tokens]
            for g in self.groups:
                self.enter(g)

    def enter(self, group: _Group) -> None:
        if self.index is None:
            return
        for unit, units in zip(group.tokens, self.index, strict=True):
            units.setdefault(unit, set()).add(group)
        if 2 * len(group.stars) >= len(group.tokens):
            self.wild.add(group)

    def leave(self, group: _Group) -> None:
        if self.index is None:
            return
        for unit, units in zip(group.tokens, self.index, strict=True):
            holders = units.get(unit)
            if holders is not None:
                holders.discard(group)
                if not holders:
                    del units[unit]
        self.wild.discard(group)

    def shared(self, tokens: list[str]) -> dict[_Group, int]:
        """How many units each group that may matter has equal to the message's."""
        if self.index is None:
            equal = str.__eq__  # compared in C: most units are equal or not
            return {g: sum(map(equal, g.tokens, tokens)) for g in self.groups}
        counts: dict[_Group, int] = dict.fromkeys(self.wild, 0)
        for unit, units in zip(tokens, self.index, strict=True):
            for group in units.get(unit, ()):
                counts[group] = counts.get(group, 0) + 1
        return counts


def _may_join(tokens: list[str], near: list[_Group], min_diversity: int) -> bool:
    """Whether the newcomer `tokens` could join one of `near` at all: where they differ, a
    placeholder or enough distinct values among them all must make the position a variable.
    (Only a merge that takes the newcomer in can be new: the others were weighed before.)"""
    values = [{t} for t in tokens]
    for group in near:
        for p, (a, b) in enumerate(zip(group.tokens, tokens, strict=True)):
            if a != b:
                values[p].add(a)
    return any(all(a == b or len(values[p]) >= min_diversity or has_placeholder(a) or has_placeholder(b)
                   for p, (a, b) in enumerate(zip(group.tokens, tokens, strict=True)))
               for group in near)


def _age(group: _Group) -> tuple[int, int]:
    return group.seen, int(group.gid[1:])


class TemplateMiner:
    """One pass, bounded memory: at most `max_groups` groups and `cache_size` cache entries."""

    def __init__(self, config: MinerConfig | None = None) -> None:
        self.config = config or MinerConfig()
        self._mask: Callable[[str], str] = masker(frozenset(self.config.disabled))
        self._digit_cache = self.config.enabled("id") and self.config.enabled("num")
        self._max_chars = self.config.max_chars
        self._groups: dict[str, _Group] = {}
        self._buckets: dict[int, _Bucket] = {}
        self._alias: dict[str, str] = {}
        self._cache: dict[bytes | str, _Group] = {}
        # Messages seen word for word, apart so that a stream of unique messages cannot push the
        # keys that match many out of the cache above.
        self._exact: dict[str, _Group] = {}
        self._exact_size = max(1, self.config.cache_size // 10)
        self._merges: deque[tuple[str, str]] = deque(maxlen=self.config.max_groups)
        self._next = 1
        self._clock = 0

    def __len__(self) -> int:
        return len(self._groups)

    def add(self, message: str) -> Match:
        """Assign `message` to a group (new or existing) and return its canonical id and template."""
        self._clock += 1
        if len(message) > self._max_chars:
            message = message[: self._max_chars]
        group = self._exact.get(message)  # logs repeat messages word for word
        if group is not None and group.into is None and not group.gone:
            group.seen = self._clock
            return group.match
        key = digit_blind(message) if self._digit_cache else message
        group = self._cache.get(key)
        if group is None or group.into is not None or group.gone:
            group = self._cached(key)
            if group is None:
                masked = self._mask(message)
                group = self._cached(masked)
                if group is None:
                    group = self._place(tokenize(masked))
                    self._remember(masked, group)
                self._remember(key, group)
        group.seen = self._clock
        exact = self._exact
        exact[message] = group
        if len(exact) > self._exact_size:
            del exact[next(iter(exact))]
        return group.match

    def resolve(self, group_id: str) -> str:
        """The canonical id of any id this miner returned (itself when it was never merged)."""
        return self._alias.get(group_id, group_id)

    def drain_merges(self) -> list[tuple[str, str]]:
        """(old id, canonical id) for every id merged since the last call, oldest first."""
        merges = list(self._merges)
        self._merges.clear()
        return merges

    def template(self, group_id: str) -> str | None:
        group = self._groups.get(self.resolve(group_id))
        return group.match.template if group is not None else None

    def groups(self) -> list[Match]:
        return [g.match for g in self._groups.values()]

    # -- online assignment -------------------------------------------------------------------
    def _cached(self, key: bytes | str) -> _Group | None:
        group = self._cache.get(key)
        while group is not None and group.into is not None:
            group = group.into
        if group is not None and group.gone:
            return None  # forgotten
        return group

    def _remember(self, key: bytes | str, group: _Group) -> None:
        cache = self._cache
        cache[key] = group
        if len(cache) > self.config.cache_size:
            del cache[next(iter(cache))]

    def _place(self, tokens: list[str]) -> _Group:
        # A template matches when each unit is equal or matched by a wildcard; the most specific
        # one wins. Otherwise the message starts a group, weighed against the groups that share
        # at least half its units (a cheap filter: a group that keeps less is rarely one event).
        size = len(tokens)
        bucket = self._buckets.get(size) or self._buckets.setdefault(size, _Bucket())
        need = size / 2
        best, best_rank, near = None, (-1, 0), []
        for group, matched in bucket.shared(tokens).items():
            mine, stars = group.tokens, group.stars
            if matched + len(stars) < need:
                continue
            matched += sum(mine[p] != tokens[p] and unit_matches(mine[p], tokens[p]) for p in stars)
            if matched == size:
                rank = (size - len(stars), -int(group.gid[1:]))  # the most specific, then the oldest
                if rank > best_rank:
                    best, best_rank = group, rank
            elif matched >= need:
                near.append(group)
        if best is not None:
            return best
        return self._create(tokens, bucket, near)

    def _create(self, tokens: list[str], bucket: _Bucket, near: list[_Group]) -> _Group:
        gid = f"g{self._next}"
        self._next += 1
        group = _Group(gid, tokens)
        group.seen = self._clock
        self._groups[gid] = group
        bucket.add(group)
        bucket.fresh += 1
        if len(self._groups) > self.config.max_groups:
            self._evict()
            near = [g for g in near if not g.gone]
        if near and self.config.enabled("consolidate"):
            # The newcomer is weighed against the groups it could join (with none, nothing can
            # merge yet). Consolidating the whole bucket costs its size, so it waits for at
            # least 8 newcomers and half as many as the bucket holds: each pays a constant share.
            if bucket.fresh >= max(8, len(bucket.groups) // 2):
                self._consolidate(bucket)
            elif _may_join(tokens, near, self.config.min_diversity):
                self._merge_clusters([*near, group])
                bucket.groups = [g for g in bucket.groups if g.into is None]
        while group.into is not None:
            group = group.into
        return group

    # -- consolidation -----------------------------------------------------------------------
    def consolidate(self) -> None:
        """Merge groups that turned out to be one event, in every bucket with newcomers."""
        if not self.config.enabled("consolidate"):
            return
        for bucket in list(self._buckets.values()):
            if bucket.fresh:
                self._consolidate(bucket)

    def _consolidate(self, bucket: _Bucket) -> None:
        bucket.fresh = 0
        if len(bucket.groups) > 1:
            self._merge_clusters(bucket.groups)
            bucket.groups = [g for g in bucket.groups if g.into is None]

    def _merge_clusters(self, groups: list[_Group]) -> None:
        clusters = partition([g.tokens for g in groups], self.config.min_diversity, self.config.min_constant)
        for cluster in clusters:
            if len(cluster) > 1:
                self._merge([groups[i] for i in cluster])

    def _merge(self, members: list[_Group]) -> None:
        # The oldest id stays: it is the one most likely to have been alerted already.
        members.sort(key=lambda g: int(g.gid[1:]))
        keep, rest = members[0], members[1:]
        bucket = self._buckets[len(keep.tokens)]
        for group in members:
            bucket.leave(group)
        keep.retemplate(generalize([g.tokens for g in members]))
        bucket.enter(keep)
        for old in rest:
            old.into = keep
            del self._groups[old.gid]
            for gid in (old.gid, *old.aliases):
                self._alias[gid] = keep.gid
                self._merges.append((gid, keep.gid))
            keep.aliases.extend((old.gid, *old.aliases))
            keep.seen = max(keep.seen, old.seen)
        excess = len(keep.aliases) - self.config.max_aliases
        if excess > 0:
            for gid in keep.aliases[:excess]:
                self._alias.pop(gid, None)
            del keep.aliases[:excess]

    def _evict(self) -> None:
        # Forget the least recently matched tenth at once, so eviction costs O(1) per message on
        # average; cache entries pointing at a forgotten group simply miss.
        by_age = sorted(self._groups.values(), key=_age)
        gone = by_age[: max(1, len(by_age) // 10)]
        for group in gone:
            group.gone = True
            del self._groups[group.gid]
            self._buckets[len(group.tokens)].leave(group)
            for gid in group.aliases:
                self._alias.pop(gid, None)
        for length, bucket in list(self._buckets.items()):
            bucket.groups = [g for g in bucket.groups if g.gid in self._groups]
            if not bucket.groups:
                del self._buckets[length]

    # -- persistence -------------------------------------------------------------------------
    def to_state(self) -> dict:
        """{"meta": config and counters, "groups": {id: {"tokens", "aliases"}}}: a group's dict
        changes only when its template or its aliases do, so it can be stored as its own item."""
        config = asdict(self.config)
        config["disabled"] = list(config["disabled"])
        return {
            "meta": {"version": STATE_VERSION, "config": config, "next": self._next},
            "groups": {g.gid: {"tokens": list(g.tokens), "aliases": list(g.aliases)}
                       for g in self._groups.values()},
        }

    @classmethod
    def from_state(cls, state: dict) -> TemplateMiner:
        meta = state.get("meta") or {}
        version = meta.get("version", state.get("version"))  # version 1 kept it at the top
        if version != STATE_VERSION:
            raise ValueError(f"miner state version {version!r}, expected {STATE_VERSION}: start from an "
                             "empty state (the ids of the old one cannot be kept)")
        config = dict(meta["config"])
        config["disabled"] = tuple(config.get("disabled", ()))
        miner = cls(MinerConfig(**config))
        miner._next = meta["next"]
        # Recency is not stored (it changes with every message): older ids count as less recent.
        for gid in sorted(state["groups"], key=lambda g: int(g[1:])):
            item = state["groups"][gid]
            group = _Group(gid, list(item["tokens"]))
            group.aliases = list(item.get("aliases", ()))
            miner._groups[gid] = group
            miner._buckets.setdefault(len(group.tokens), _Bucket()).add(group)
            for alias in group.aliases:
                miner._alias[alias] = gid
        return miner

    def save(self, path: Path | str) -> None:
        # Write then rename, so a crash mid-save leaves the previous state intact.
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_state()), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path | str) -> TemplateMiner:
        return cls.from_state(json.loads(Path(path).read_text(encoding="utf-8")))
