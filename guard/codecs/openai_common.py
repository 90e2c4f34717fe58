"""What the OpenAI-shaped codecs share: the blocked-prompt answer, shape errors, and JSON output.

Shape errors name the field path (`messages[2].content`) and what was expected there, never the value.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from guard.codecs.base import BodyLimits, Extraction, Replacement, Reply, TextSlot
from guard.codecs.jsonscan import JsonStr, SlotLiterals, check_slot_count, error_status, parse_json
from guard.codecs.jsonsplice import rewrite_slots
from guard.errors import RequestError
from guard.types import Decision, Direction

JsonObject = dict[str, Any]


def shape_error(direction: Direction, message: str) -> RequestError:
    """A body of the wrong shape: 400 `invalid_request` for a request (as OpenAI answers), 502 for an
    upstream answer the guard cannot read."""
    status, code, noun = error_status(direction)
    return RequestError(status, f"{noun}: {message}", code)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, for bodies the guard writes itself. A lone surrogate (an upstream may send
    `"\\ud800"`) cannot be UTF-8, so such a value is written with ASCII escapes instead."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def input_refusal(decision: Decision, message: str) -> Reply:
    """HTTP 400 in OpenAI's error shape, `code: "content_filter"`, with the categories that triggered."""
    error = {
        "message": message,
        "type": "invalid_request_error",
        "param": None,
        "code": "content_filter",
        "categories": [category.value for category in decision.categories],
    }
    return Reply(400, dumps({"error": error}))


def type_name(value: object) -> str:
    """The JSON type of a value, for error messages that must not quote it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


class OpenAIJsonCodec(ABC):
    """Extraction, rewrite and the blocked-prompt answer common to the OpenAI JSON APIs; subclasses say
    where the texts are (`request_texts`, `response_texts`) and how a refused answer looks."""

    name: str

    def __init__(self, limits: BodyLimits) -> None:
        self._limits = limits

    @abstractmethod
    def request_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        """The request's texts with their roles, in body order; raises `shape_error` on a wrong shape."""

    @abstractmethod
    def response_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        """The upstream answer's texts with their roles; raises `shape_error` on a wrong shape."""

    @abstractmethod
    def refused_answer(self, value: JsonObject, refusal_text: str) -> JsonObject:
        """The upstream answer with every choice's text replaced by the refusal."""

    def extract(self, body: bytes, direction: Direction) -> Extraction:
        document = parse_json(body, self._limits.max_json_depth, direction)
        if direction is Direction.INPUT:
            found = self.request_texts(document.value)
            stream = isinstance(document.value, dict) and document.value.get("stream") is True
        else:
            found = self.response_texts(document.value)
            stream = False
        check_slot_count(len(found), self._limits.max_texts, direction)
        slots = tuple(TextSlot(i, str(literal), role) for i, (literal, role) in enumerate(found))
        handle = SlotLiterals(document, tuple(literal for literal, _ in found))
        return Extraction(slots, stream, handle)

    def rewrite(self, body: bytes, extraction: Extraction, replacements: Mapping[int, Replacement]) -> bytes:
        return rewrite_slots(body, extraction, replacements)

    def refuse_input(self, decision: Decision, message: str) -> Reply:
        return input_refusal(decision, message)

    def refuse_output(self, body: bytes, extraction: Extraction, refusal_text: str) -> bytes:
        handle = extraction.handle
        if isinstance(handle, SlotLiterals):
            value = handle.document.value
        else:
            value = parse_json(body, self._limits.max_json_depth, Direction.OUTPUT).value
        if not isinstance(value, dict):
            raise shape_error(Direction.OUTPUT, f"must be a JSON object, not {type_name(value)}")
        return dumps(self.refused_answer(value, refusal_text))


def response_choices(value: object) -> list[JsonObject]:
    """`choices` of an upstream answer (none when absent), each checked to be an object."""
    if not isinstance(value, dict):
        raise shape_error(Direction.OUTPUT, f"must be a JSON object, not {type_name(value)}")
    choices = value.get("choices")
    if choices is None:
        return []
    if not isinstance(choices, list):
        raise shape_error(Direction.OUTPUT, f"choices must be a list, not {type_name(choices)}")
    for i, choice in enumerate(choices):
        if not isinstance(choice, dict):
            raise shape_error(Direction.OUTPUT, f"choices[{i}] must be an object, not {type_name(choice)}")
    return choices


def refused_choice(choice: JsonObject, text_fields: JsonObject) -> JsonObject:
    """A choice whose text is replaced (`text_fields`), marked `content_filter`, its logprobs (which
    repeat the refused tokens) removed."""
    refused = {**choice, **text_fields, "finish_reason": "content_filter"}
    if "logprobs" in refused:
        refused["logprobs"] = None
    return refused
