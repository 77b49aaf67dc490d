"""Configured log sources and formats: `[[sources]]`/`[[formats]]` in cali.toml, or CALI_SOURCES/CALI_FORMATS."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cali.core.parsing import FORMATS, LogFormat, Source, json_format, text_format
from cali.core.regex_compat import named_groups, subset_problems

# Names end up in Fluent Bit tags (cali.<format>.<service>), file names and modify rules, which
# split on spaces and dots: keep them to one plain word.
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_SERVICE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
_WORD = re.compile(r"[^\s\"']+")
GLOB_CHARS = frozenset("*?[")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSettings(_Model):
    """One tailed path or glob: the files of one service, written in one format."""

    service: str = Field(pattern=_SERVICE)
    path: str = Field(min_length=1, description="A file or a glob; relative to the working directory.")
    format: str = Field(pattern=_NAME)

    @property
    def is_glob(self) -> bool:
        return any(c in GLOB_CHARS for c in self.path)

    def to_source(self) -> Source:
        return Source(self.service, self.format, self.path)


class FormatSettings(_Model):
    """A user format, checked like the built-in ones: every regex must mean the same in Python and Onigmo."""

    name: str = Field(pattern=_NAME)
    kind: Literal["text", "json"] = "text"
    # text: the header regex, with named groups (`message` at least). json: optional, parses the
    # lines that are not JSON (a raw crash printed to the same file).
    header: str | None = None
    # Where an event begins; every other line continues it. Must start with \A. json: default \A\{.
    start: str | None = None
    # Keys added when the line lacks them or left them empty, e.g. {level = "INFO"}.
    defaults: dict[str, str] = {}

    @field_validator("defaults")
    @classmethod
    def _plain_words(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not _WORD.fullmatch(key) or not _WORD.fullmatch(value):
                raise ValueError(f"default {key!r} = {value!r}: keys and values must be single words without "
                                 "spaces or quotes (Fluent Bit's modify filter splits on them)")
        return v

    @model_validator(mode="after")
    def _regexes(self) -> FormatSettings:
        from cali.fluentbit.onigmo import onigmo_error

        if self.name in FORMATS:
            raise ValueError(f"format {self.name!r} is built in; give your format another name")
        if self.kind == "text" and not (self.header and self.start):
            raise ValueError(f"format {self.name!r}: a text format needs both `header` and `start`")
        for field in ("header", "start"):
            rx = getattr(self, field)
            if rx is None:
                continue
            problems = subset_problems(rx, onigmo_error)
            if problems:
                raise ValueError(f"format {self.name!r} {field}: " + "; ".join(problems))
        if self.start is not None and not self.start.startswith("\\A"):
            raise ValueError(f"format {self.name!r} start: must begin with \\A (the start of a line)")
        if self.header is not None and "message" not in named_groups(self.header):
            raise ValueError(f"format {self.name!r} header: needs a named group (?P<message>...)")
        return self

    def to_format(self) -> LogFormat:
        if self.kind == "json":
            return json_format(self.name, self.header, self.defaults, start=self.start)
        assert self.header and self.start  # checked above
        return text_format(self.name, self.header, self.start, self.defaults)


class ShipConfig(_Model):
    """The sources to ship and the formats they use (built-in plus configured)."""

    sources: list[SourceSettings] = []
    formats: list[FormatSettings] = []

    @model_validator(mode="after")
    def _known_formats(self) -> ShipConfig:
        names = [f.name for f in self.formats]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"format(s) defined twice: {dup}")
        known = FORMATS.keys() | set(names)
        for s in self.sources:
            if s.format not in known:
                raise ValueError(f"source {s.service!r} ({s.path}): unknown format {s.format!r}; "
                                 f"known: {sorted(known)}")
        paths = [s.path for s in self.sources]
        dup = sorted({p for p in paths if paths.count(p) > 1})
        if dup:
            raise ValueError(f"path(s) configured twice: {dup}")
        return self

    def catalog(self) -> dict[str, LogFormat]:
        """Every format a source may name: the built-in ones and the configured ones."""
        return {**FORMATS, **{f.name: f.to_format() for f in self.formats}}

    def to_sources(self) -> list[Source]:
        return [s.to_source() for s in self.sources]


class ShipConfigError(ValueError):
    """A configuration that cannot be used, as one line per problem."""


def _one_line(exc: ValidationError, where: str) -> ShipConfigError:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {loc + ': ' if loc else ''}{msg}")
    return ShipConfigError("\n".join(parts))


def ship_config(sources: Iterable[object] = (), formats: Iterable[object] = (), *, where: str = "config"
                ) -> ShipConfig:
    """Validates plain data (or already validated models) into a ShipConfig; raises ShipConfigError."""
    def dump(items: Iterable[object]) -> list[object]:
        return [i.model_dump() if isinstance(i, BaseModel) else i for i in items]

    try:
        return ShipConfig.model_validate({"sources": dump(sources), "formats": dump(formats)})
    except ValidationError as exc:
        raise _one_line(exc, where) from exc


def load_ship_config(path: Path) -> ShipConfig:
    """Reads only `[[sources]]` and `[[formats]]` from a TOML file (other sections are Settings')."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ShipConfigError(f"{path}: no such file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ShipConfigError(f"{path}: not valid TOML ({exc})") from exc
    return ship_config(data.get("sources", []), data.get("formats", []), where=str(path))


def from_settings(settings: object) -> ShipConfig:
    """The sources and formats of a loaded cali.config.Settings (cali.toml or CALI_SOURCES/CALI_FORMATS)."""
    return ship_config(getattr(settings, "sources", []), getattr(settings, "formats", []),
                       where="cali.toml / CALI_SOURCES / CALI_FORMATS")


def load_config(config: Path | None) -> tuple[ShipConfig, str]:
    """Sources and formats from a --config FILE, else from cali.toml / CALI_SOURCES / CALI_FORMATS.

    Returns the config and where it came from, for messages.
    """
    if config is not None:
        return load_ship_config(config), str(config)
    from cali.config import load_settings

    return from_settings(load_settings()), "cali.toml / CALI_SOURCES"


__all__ = ["SourceSettings", "FormatSettings", "ShipConfig", "ShipConfigError", "ship_config",
           "load_ship_config", "from_settings", "load_config", "GLOB_CHARS"]
