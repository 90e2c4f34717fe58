"""Small helpers the Responses and Anthropic codecs share for walking parsed bodies.

`string_values` finds every string value under a JSON value (a tool call's `input` object, whose leaves
the model wrote); `TextCollector` gathers (literal, role) pairs while checking shapes, so each codec's
field table reads as a list of "this field, this role" lines. Errors name the field path, never a value.
"""

from __future__ import annotations

from guard.codecs.jsonscan import JsonStr
from guard.codecs.openai_common import shape_error, type_name
from guard.types import Direction


def string_values(value: object) -> list[JsonStr]:
    """Every string value inside `value` (object keys aside), in document order."""
    found: list[JsonStr] = []
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, JsonStr):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return found


class TextCollector:
    """The texts of one body with their slot roles, in body order."""

    def __init__(self, direction: Direction) -> None:
        self.direction = direction
        self.texts: list[tuple[JsonStr, str]] = []

    def error(self, message: str) -> Exception:
        return shape_error(self.direction, message)

    def obj(self, value: object, where: str) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.error(f"{where} must be an object, not {type_name(value)}")
        return value

    def items(self, value: object, where: str) -> list[object]:
        if not isinstance(value, list):
            raise self.error(f"{where} must be a list, not {type_name(value)}")
        return value

    def text(self, value: object, where: str, role: str, optional: bool = True) -> None:
        """A string field: collected; null or absent: skipped when `optional`; anything else: a shape error."""
        if isinstance(value, JsonStr):
            self.texts.append((value, role))
        elif value is not None or not optional:
            raise self.error(f"{where} must be a string, not {type_name(value)}")

    def strings_in(self, value: object, role: str) -> None:
        """Every string value inside a JSON value (a tool call's input object)."""
        self.texts.extend((literal, role) for literal in string_values(value))
