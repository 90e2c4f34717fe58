"""Codec kind `json`: any JSON API, with the screenable texts named by configured field paths.

Paths are a small subset of JSONPath:

    $            the whole body
    .key         an object member (letters, digits, `_`, `-`)
    ['key']      an object member with any name (`\\'` and `\\\\` escape a quote and a backslash)
    [N]          the N-th list item (N >= 0)
    [*]          every item of a list, or every member value of an object

e.g. `$.prompt`, `$.input.messages[*].text`, `$.items[0].body`, `$['odd key'][*]`. Values at a path that
are not strings are skipped; a path that matches nothing is fine. Texts are reported in path order, each
string once even when several paths reach it; the slot role is the path that found it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from guard.codecs.base import BodyLimits, Extraction, Replacement, Reply, StreamReader, TextSlot
from guard.codecs.jsonscan import JsonStr, SlotLiterals, check_slot_count, parse_json
from guard.codecs.jsonsplice import rewrite_slots
from guard.codecs.openai_common import dumps
from guard.errors import ConfigError
from guard.types import Decision, Direction

_SYNTAX = "supported: $, .key, ['key'], [N], [*]"
_DOT_KEY = re.compile(r"\.([A-Za-z0-9_-]+)")
_QUOTED_KEY = re.compile(r"\['((?:[^'\\]|\\['\\])*)'\]")
_INDEX = re.compile(r"\[(\d+)\]")
_WILDCARD = "[*]"


@dataclass(frozen=True, slots=True)
class _Step:
    key: str | None = None  # an object member
    index: int | None = None  # a list item
    # neither: every item or member value


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A parsed path: its source text (the slot role) and its steps."""

    text: str
    steps: tuple[_Step, ...]

    def strings(self, root: object) -> list[JsonStr]:
        """The string values at this path in `root`, in document order."""
        current: list[object] = [root]
        for step in self.steps:
            following: list[object] = []
            for node in current:
                if step.key is not None:
                    if isinstance(node, dict) and step.key in node:
                        following.append(node[step.key])
                elif step.index is not None:
                    if isinstance(node, list) and step.index < len(node):
                        following.append(node[step.index])
                elif isinstance(node, list):
                    following.extend(node)
                elif isinstance(node, dict):
                    following.extend(node.values())
            current = following
        return [node for node in current if isinstance(node, JsonStr)]


def parse_path(text: str) -> FieldPath:
    """Parse a configured path; raise `ConfigError` saying where it stops making sense."""
    if not text.startswith("$"):
        raise ConfigError(f"codec path {text!r} must start with '$'; {_SYNTAX}")
    steps: list[_Step] = []
    pos = 1
    while pos < len(text):
        if text.startswith(_WILDCARD, pos):
            steps.append(_Step())
            pos += len(_WILDCARD)
            continue
        for pattern in (_DOT_KEY, _QUOTED_KEY, _INDEX):
            match = pattern.match(text, pos)
            if match is None:
                continue
            if pattern is _INDEX:
                steps.append(_Step(index=int(match.group(1))))
            elif pattern is _QUOTED_KEY:
                steps.append(_Step(key=re.sub(r"\\(['\\])", r"\1", match.group(1))))
            else:
                steps.append(_Step(key=match.group(1)))
            pos = match.end()
            break
        else:
            raise ConfigError(f"codec path {text!r} is not understood at character {pos + 1}; {_SYNTAX}")
    return FieldPath(text, tuple(steps))


class JsonPathCodec:
    """Screens the strings at `request_paths` in requests and `response_paths` in answers. Does not
    stream: an answer is screened whole."""

    name = "json"

    def __init__(self, limits: BodyLimits, request_paths: Sequence[str], response_paths: Sequence[str]) -> None:
        self._limits = limits
        self._paths = {
            Direction.INPUT: tuple(parse_path(p) for p in request_paths),
            Direction.OUTPUT: tuple(parse_path(p) for p in response_paths),
        }

    def extract(self, body: bytes, direction: Direction) -> Extraction:
        paths = self._paths[direction]
        if not paths:
            return Extraction(())  # nothing to screen this way; the body need not even be JSON
        document = parse_json(body, self._limits.max_json_depth, direction)
        seen: set[int] = set()
        found: list[tuple[JsonStr, str]] = []
        for path in paths:
            for literal in path.strings(document.value):
                if literal.start not in seen:
                    seen.add(literal.start)
                    found.append((literal, path.text))
        check_slot_count(len(found), self._limits.max_texts, direction)
        slots = tuple(TextSlot(i, str(literal), role) for i, (literal, role) in enumerate(found))
        return Extraction(slots, False, SlotLiterals(document, tuple(literal for literal, _ in found)))

    def rewrite(self, body: bytes, extraction: Extraction, replacements: Mapping[int, Replacement]) -> bytes:
        return rewrite_slots(body, extraction, replacements)

    def refuse_input(self, decision: Decision, message: str) -> Reply:
        error = {
            "message": message,
            "type": "content_filter",
            "categories": [category.value for category in decision.categories],
        }
        return Reply(400, dumps({"error": error}))

    def refuse_output(self, body: bytes, extraction: Extraction, refusal_text: str) -> bytes:
        return rewrite_slots(body, extraction, {slot.index: refusal_text for slot in extraction.slots})

    def stream_reader(self) -> StreamReader | None:
        return None
