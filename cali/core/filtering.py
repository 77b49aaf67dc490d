"""Which records are worth an alert: level threshold plus per-service rules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cali.core.records import Level


@dataclass(frozen=True)
class ServiceRule:
    """Overrides for one service (glob-free exact name): its own minimum level and muted patterns."""

    service: str
    min_level: Level | None = None
    mute: tuple[str, ...] = ()  # regexes on the message: known noise that must never page


@dataclass
class AlertFilter:
    min_level: Level = Level.WARN
    rules: dict[str, ServiceRule] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._mutes = {name: re.compile("|".join(f"(?:{m})" for m in r.mute))
                       for name, r in self.rules.items() if r.mute}
        lowest = min([self.min_level.rank] + [r.min_level.rank for r in self.rules.values() if r.min_level])
        # The levels any service could alert on: the hot path tests set membership before anything else.
        self.maybe = frozenset(lv for lv in Level if lv.rank >= lowest)

    def accepts(self, service: str, level: Level, message: str) -> bool:
        rule = self.rules.get(service)
        threshold = rule.min_level if rule and rule.min_level else self.min_level
        if level.rank < threshold.rank:
            return False
        mute = self._mutes.get(service)
        return not (mute and mute.search(message))
