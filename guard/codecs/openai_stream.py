"""The `StreamReader` for OpenAI-style SSE streams (chat completion chunks and legacy completion chunks).

Each upstream event becomes pieces:

- `data: [DONE]` and events that end a choice or carry `usage` become a barrier `Passthrough` (held text
  is screened and released before them);
- events that are not a chunk (not JSON, not an object, no list of choices: garbage, an upstream error
  event) may carry text nobody screened, so a fixed error event stands in for them, as a barrier;
- events without text and without anything final (a role preamble, an SSE comment, a keep-alive) become a
  non-barrier `Passthrough`;
- text becomes `TextDelta(choice, text)`. The event itself is not forwarded: the released text is
  re-rendered by `render_text`. What else the event carried (a finish reason, usage, a role) goes on as a
  re-rendered `Passthrough` of the event without its text: before the deltas when it is only a role,
  after them (as a barrier) when it is final.

Per-token `logprobs` repeat the text, so they are dropped from events whose text is held back.
The dialects (where the text sits in a choice) live with their codecs.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence

from guard.codecs.base import Passthrough, StreamPiece, TextDelta
from guard.codecs.openai_common import JsonObject, dumps
from guard.codecs.sse import SseEvent, SseParser

_DONE = b"data: [DONE]\n\n"
# Stands in for an upstream event that is not a chunk: its bytes are never released unscreened.
WITHHELD_EVENT = (
    b'data: {"error":{"message":"The model endpoint sent an event the guard could not screen, so it was '
    b'withheld.","type":"upstream_error","param":null,"code":"upstream_invalid_response"}}\n\n'
)
# Keys copied from the last upstream chunk into events the guard renders.
_TEMPLATE_KEYS = ("id", "object", "created", "model", "system_fingerprint")



def _sse_data(fields: bytes, payload: JsonObject) -> bytes:
    return fields + b"data: " + dumps(payload) + b"\n\n"


class OpenAIStreamReader(ABC):
    """Per-response state: the SSE parser, the last chunk's identity fields, and the choices seen."""

    object_name: str  # the chunks' `object`, used until the upstream has sent one

    def __init__(self, max_event_bytes: int) -> None:
        self._parser = SseParser(max_event_bytes)
        self._template: JsonObject = {"id": "guard", "object": self.object_name, "created": 0, "model": ""}
        self._choices: dict[int, None] = {}  # insertion-ordered set

    # --- dialect ---------------------------------------------------------------------------------------
    @abstractmethod
    def text_of(self, choice: JsonObject) -> str:
        """The text a streamed choice carries ("" when none)."""

    @abstractmethod
    def without_text(self, choice: JsonObject) -> JsonObject:
        """A copy of the choice with its text (and logprobs) removed."""

    @abstractmethod
    def is_final(self, choice: JsonObject) -> bool:
        """Whether the choice (its text removed) carries something that must wait for held text: a
        finish reason, tool calls, a refusal."""

    @abstractmethod
    def has_role(self, choice: JsonObject) -> bool:
        """Whether the choice announces a role (forwarded ahead of its text)."""

    @abstractmethod
    def text_choice(self, index: int, text: str, finish_reason: str | None) -> JsonObject:
        """A choice object carrying `text` in this API's shape."""

    # --- StreamReader ----------------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> Sequence[StreamPiece]:
        return [piece for event in self._parser.feed(chunk) for piece in self._pieces(event)]

    def finish(self) -> Sequence[StreamPiece]:
        return [piece for event in self._parser.finish() for piece in self._pieces(event)]

    def render_text(self, choice: int, text: str) -> bytes:
        return _sse_data(b"", {**self._template, "choices": [self.text_choice(choice, text, None)]})

    def render_refusal(self, refusal_text: str) -> bytes:
        choices = list(self._choices) or [0]
        events = [
            _sse_data(b"", {**self._template, "choices": [self.text_choice(i, refusal_text, "content_filter")]})
            for i in choices
        ]
        return b"".join(events) + _DONE

    # --- internals -------------------------------------------------------------------------------------
    def _pieces(self, event: SseEvent) -> list[StreamPiece]:
        if event.data is None:
            return [Passthrough(event.raw, barrier=False)]
        if event.data.strip() == "[DONE]":
            return [Passthrough(event.raw, barrier=True)]
        try:
            payload = json.loads(event.data)
        except ValueError:
            return [Passthrough(WITHHELD_EVENT, barrier=True)]
        if not isinstance(payload, dict):
            return [Passthrough(WITHHELD_EVENT, barrier=True)]
        choices = payload.get("choices")
        if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
            # Not a chunk (an error event, an unknown shape): it may carry text nobody screened, so a fixed
            # error event stands in for it, and nothing overtakes it.
            return [Passthrough(WITHHELD_EVENT, barrier=True)]
        self._remember(payload)
        deltas: list[StreamPiece] = []
        for choice in choices:
            index = _index(choice)
            self._choices.setdefault(index, None)
            text = self.text_of(choice)
            if text:
                deltas.append(TextDelta(index, text))
        final = payload.get("usage") is not None or any(self.is_final(c) for c in choices)
        if not deltas:
            return [Passthrough(event.raw, barrier=final)]
        rest = {**payload, "choices": [self.without_text(c) for c in choices]}
        fields = event.field_lines()
        if final:
            return [*deltas, Passthrough(_sse_data(fields, rest), barrier=True)]
        if any(self.has_role(c) for c in choices):
            return [Passthrough(_sse_data(fields, rest), barrier=False), *deltas]
        return deltas

    def _remember(self, payload: JsonObject) -> None:
        if "id" in payload:
            self._template = {key: payload[key] for key in _TEMPLATE_KEYS if key in payload}
            self._template.setdefault("object", self.object_name)


def _index(choice: JsonObject) -> int:
    index = choice.get("index", 0)
    return index if isinstance(index, int) and not isinstance(index, bool) else 0
