"""Every string value of a parsed JSON document (`guard.codecs.jsonscan.parse_json`), in body order."""

from __future__ import annotations

from guard.codecs.jsonscan import JsonStr


def json_strings(value: object) -> list[JsonStr]:
    """The located string values under `value`, sorted by where they start in the raw body."""
    found: list[JsonStr] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, JsonStr):
            found.append(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(found, key=lambda literal: literal.start)
