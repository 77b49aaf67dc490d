"""What a Slack reader sees of a mrkdwn string, and the Block Kit checks the tests run on rendered messages.

Slack's rules ("Formatting text for app surfaces"): `<...>` is a control sequence (a link `<url|label>`,
a mention `<@U123>`, `<#C123>`, `<!here>`, `<!subteam^ID>`, a date `<!date^ts^format|fallback>`), and
`&amp;`, `&lt;`, `&gt;` are the only entities it decodes. Everything else is shown as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import Block

_TOKEN = re.compile(r"<([^<>]*)>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_DECODE = {"amp": "&", "lt": "<", "gt": ">"}
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=\S)|(?<=\S)\*(?![\w*])|(?<!\w)_(?=\S)|(?<=\S)_(?!\w)")
_MENTION = re.compile(r"^(?:[@#][A-Z0-9]+|!(?:here|channel|everyone)|!subteam\^)")


@dataclass
class View:
    text: str  # as displayed (dates shown as their fallback, links as their label)
    mentions: list[str] = field(default_factory=list)  # tokens that would notify someone
    links: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)

    @property
    def plain(self) -> str:
        """The text without mrkdwn's emphasis and code markers (*bold*, _italic_, `code`, ```block```)."""
        return _EMPHASIS.sub("", self.text.replace("`", ""))


def reader_view(mrkdwn: str) -> View:
    view = View(text="")

    def token(m: re.Match[str]) -> str:
        body = m.group(1)
        if body.startswith("!date^"):
            view.dates.append(body)
            return _decode(body.split("|", 1)[1]) if "|" in body else ""
        if _MENTION.match(body):
            view.mentions.append(body)
            return "@" + body.lstrip("@#!").split("|")[0]
        url, _, label = body.partition("|")
        view.links.append(url)
        return _decode(label or url)

    view.text = _decode_outside_tokens(mrkdwn, token)
    return view


def _decode(text: str) -> str:
    return _ENTITY.sub(lambda m: _DECODE[m.group(1)], text)


def _decode_outside_tokens(text: str, token: Any) -> str:
    out, pos = [], 0
    for m in _TOKEN.finditer(text):
        out.append(_decode(text[pos:m.start()]))
        out.append(token(m))
        pos = m.end()
    out.append(_decode(text[pos:]))
    return "".join(out)


def text_objects(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every text object of the blocks (section text and fields, context elements, headers)."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return found


def what_a_reader_sees(blocks: list[dict[str, Any]]) -> View:
    """All the text of a message as displayed, with every mention, link and date its markup holds."""
    total = View(text="")
    parts = []
    for obj in text_objects(blocks):
        if obj["type"] == "plain_text":
            parts.append(obj["text"])  # not parsed by Slack
            continue
        v = reader_view(obj["text"])
        parts.append(v.text)
        total.mentions += v.mentions
        total.links += v.links
        total.dates += v.dates
    total.text = "\n".join(parts)
    return total


def check_block_kit(blocks: list[dict[str, Any]]) -> None:
    """Each block parses into slack_sdk's model, passes its validation and round-trips unchanged (so no
    attribute is unknown to Block Kit), and every mrkdwn object is verbatim and non-empty."""
    assert 0 < len(blocks) <= 50
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None, f"unknown block type {block.get('type')!r}"
        parsed.validate_json()
        assert parsed.to_dict() == block, (parsed.to_dict(), block)
    for obj in text_objects(blocks):
        assert obj["text"].strip(), "Slack rejects empty text objects"
        if obj["type"] == "mrkdwn":
            assert obj.get("verbatim") is True, obj
