"""Parse a raw JSON body once, remembering where each string literal sits.

`parse_json` accepts what `json.loads` accepts (same grammar, same NaN/Infinity leniency) except duplicate
object keys, which it refuses (a guard and an upstream that disagree on which duplicate wins is a screening
bypass), and bodies nested deeper than the limit. Every string value comes back as a `JsonStr`: a `str`
that also knows the offsets of its literal in the decoded body text. The common case runs at C speed
(`json.loads`, then a regex over the literals paired with the values in document order); anything unusual
goes to an exact walker with an explicit stack (no recursion), which also writes the error message.

Splicing new text into the located literals is `jsonsplice`'s job.

Errors quote no body text: they name the problem and its line/column.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from json import JSONDecodeError
from json import decoder as _json_decoder
from typing import Any, cast

from guard.errors import RequestError
from guard.types import Direction

# `*` always matches, so the matcher never returns None.
_WS = cast("Callable[[str, int], re.Match[str]]", re.compile(r"[ \t\n\r]*").match)
# The C string scanner behind json.loads: (text, index after the opening quote, strict) -> (value, end).
scanstring = cast("Callable[[str, int, bool], tuple[str, int]]", getattr(_json_decoder, "scanstring"))
# ASCII digits only: the C scanner behind json.loads accepts no other digits.
_NUMBER = re.compile(r"(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?").match
_CONSTANTS: tuple[tuple[str, object], ...] = (
    ("null", None),
    ("true", True),
    ("false", False),
    ("NaN", math.nan),
    ("Infinity", math.inf),
    ("-Infinity", -math.inf),
)
# Every string literal of a valid body, in order; group 1 matches for keys (followed by ':').
_LITERALS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"([ \t\n\r]*:)?', re.DOTALL).finditer


class JsonStr(str):
    """A string value of a parsed body. `start` is the index of its opening quote in the decoded body
    text, `end` the index just past its closing quote."""

    start: int
    end: int


def string_values(value: object) -> list[str]:
    """Every string value under a parsed JSON value (object values and array items, never keys), depth
    first. In a `parse_json` document each is a `JsonStr` that knows where it stands in the body."""
    found: list[str] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def located_strings(value: object) -> list[JsonStr]:
    """The `JsonStr` values under a `parse_json` value, in body order."""
    return sorted((s for s in string_values(value) if isinstance(s, JsonStr)), key=lambda literal: literal.start)


@dataclass(frozen=True, slots=True)
class JsonDocument:
    """A parsed body: the raw bytes, their decoded text, and the value (dicts, lists, JsonStr, numbers)."""

    body: bytes
    text: str
    value: object


@dataclass(frozen=True, slots=True)
class SlotLiterals:
    """`Extraction.handle` of the JSON codecs: the document and, per slot index, the literal it came from."""

    document: JsonDocument
    literals: tuple[JsonStr, ...]


_SLOW = object()  # _parse_fast's "ask the walker"


class _Malformed(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


def error_status(direction: Direction) -> tuple[int, str, str]:
    """Status, error code and the noun for a bad body: the caller's request (400), or the upstream's
    answer (502, since the caller did nothing wrong)."""
    if direction is Direction.INPUT:
        return 400, "invalid_request", "request body"
    return 502, "bad_upstream_response", "upstream response"


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line} column {column}"


def parse_json(body: bytes, max_depth: int, direction: Direction = Direction.INPUT) -> JsonDocument:
    """Decode and parse `body`; raise `RequestError` (400 for input, 502 for output) when it is not UTF-8,
    not JSON, nested deeper than `max_depth` containers, or has a duplicate object key."""
    status, code, noun = error_status(direction)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(status, f"{noun} is not valid UTF-8 (byte {exc.start})", code) from None
    try:
        value = _parse_fast(text, max_depth)
        if value is _SLOW:
            value = _parse(text, max_depth)  # also the one that says exactly what is wrong, and where
    except _Malformed as exc:
        raise RequestError(status, f"{noun} {exc.message} at {_where(text, exc.pos)}", code) from None
    except JSONDecodeError as exc:  # from scanstring; its messages never quote the text
        detail = exc.msg.removesuffix(" at")  # e.g. "Unterminated string starting at"
        raise RequestError(
            status, f"{noun} is not valid JSON: {detail[:1].lower()}{detail[1:]} at {_where(text, exc.pos)}", code
        ) from None
    return JsonDocument(body, text, value)


def _parse_fast(text: str, max_depth: int) -> object:
    """The common case at C speed: `json.loads` builds the value, a regex finds the string literals, and
    one walk in document order pairs each string value with its literal (a dict's order is the body's
    order). Returns `_SLOW` when the body is not plainly valid within the depth limit, or has fewer keys
    than key literals (a duplicate key), so that the exact walker can report it."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return _SLOW
    spans: list[tuple[int, int]] = []
    keys_in_body = 0
    for match in _LITERALS(text):
        if match.group(1) is None:
            spans.append(match.span())
        else:
            keys_in_body += 1
    next_span = iter(spans).__next__
    if value.__class__ is str:
        return _located(value, next_span())
    if value.__class__ is not list and value.__class__ is not dict:
        return value
    keys_in_value = 0
    stack: list[tuple[Any, Iterator[Any]]] = []
    child = value
    while True:
        if len(stack) >= max_depth:
            return _SLOW
        if child.__class__ is list:
            stack.append((child, iter(range(len(child)))))
        else:
            keys_in_value += len(child)
            stack.append((child, iter(list(child))))
        while stack:
            container, keys = stack[-1]
            for key in keys:
                child = container[key]
                kind = child.__class__
                if kind is str:
                    container[key] = _located(child, next_span())
                elif kind is list or kind is dict:
                    break
            else:
                stack.pop()
                continue
            break
        if not stack:
            return value if keys_in_value == keys_in_body else _SLOW


def _located(value: str, span: tuple[int, int]) -> JsonStr:
    literal = JsonStr(value)
    literal.start, literal.end = span
    return literal


def _read_key(s: str, pos: int, memo: dict[str, str]) -> tuple[str, int]:
    """Read `"key" :` at `pos` (whitespace already skipped); return the key and where its value starts."""
    if not s.startswith('"', pos):
        raise _Malformed("is not valid JSON: expecting a property name in double quotes", pos)
    key, pos = scanstring(s, pos + 1, True)
    key = memo.setdefault(key, key)
    pos = _WS(s, pos).end()
    if not s.startswith(":", pos):
        raise _Malformed("is not valid JSON: expecting ':' after a property name", pos)
    return key, _WS(s, pos + 1).end()


def _parse(s: str, max_depth: int) -> object:  # noqa: C901 - one flat loop: no recursion, any depth
    n = len(s)
    memo: dict[str, str] = {}
    # Open containers, innermost last; for objects the key whose value is being read.
    stack: list[tuple[dict[str, object] | list[object], str | None]] = []
    pos = _WS(s, 0).end()
    while True:
        # Read one value at `pos`.
        c = s[pos] if pos < n else ""
        value: object
        if c == '"':
            raw, end = scanstring(s, pos + 1, True)
            literal = JsonStr(raw)
            literal.start, literal.end = pos, end
            value, pos = literal, end
        elif c == "{" or c == "[":
            if len(stack) >= max_depth:
                raise _Malformed(f"has JSON nested deeper than {max_depth} levels", pos)
            pos = _WS(s, pos + 1).end()
            if c == "[":
                if s.startswith("]", pos):
                    value, pos = [], pos + 1
                else:
                    stack.append(([], None))
                    continue
            elif s.startswith("}", pos):
                value, pos = {}, pos + 1
            else:
                key, pos = _read_key(s, pos, memo)
                stack.append(({}, key))
                continue
        else:
            match = _NUMBER(s, pos)
            if match is not None:
                integer, frac, exp = match.groups()
                try:
                    value = float(integer + (frac or "") + (exp or "")) if frac or exp else int(integer)
                except ValueError:  # more digits than int() converts (sys.int_info limit)
                    raise _Malformed("has a JSON number with too many digits", pos) from None
                pos = match.end()
            else:
                for word, constant in _CONSTANTS:
                    if s.startswith(word, pos):
                        value, pos = constant, pos + len(word)
                        break
                else:
                    raise _Malformed("is not valid JSON: expecting a value", pos)
        # Attach the value to its container; close containers as their ends arrive.
        while True:
            pos = _WS(s, pos).end()
            if not stack:
                if pos != n:
                    raise _Malformed("is not valid JSON: extra data after the value", pos)
                return value
            container, open_key = stack[-1]
            c = s[pos] if pos < n else ""
            if isinstance(container, list):
                container.append(value)
                closer = "]"
            else:
                container[cast(str, open_key)] = value
                closer = "}"
            if c == ",":
                pos = _WS(s, pos + 1).end()
                if open_key is not None:
                    key_at = pos
                    next_key, pos = _read_key(s, pos, memo)
                    if next_key in container:
                        raise _Malformed("has a duplicate key in a JSON object", key_at)
                    stack[-1] = (container, next_key)
                break
            if c == closer:
                stack.pop()
                value, pos = container, pos + 1
                continue
            raise _Malformed(f"is not valid JSON: expecting ',' or '{closer}'", pos)


def check_slot_count(count: int, max_texts: int, direction: Direction) -> None:
    """Refuse a body with more texts than the limit (413 for a request, 502 for an upstream answer)."""
    if count > max_texts:
        status = 413 if direction is Direction.INPUT else 502
        _, code, noun = error_status(direction)
        raise RequestError(status, f"{noun} has more than {max_texts} texts to screen", code)
