"""The `StreamReader` for OpenAI-style SSE streams (chat completion chunks and legacy completion chunks).

Each upstream event becomes pieces:

- `data: [DONE]` and events that end a choice or carry `usage` become a barrier `Passthrough` (held text
  is screened and released before them);
- events that are not a chunk (not JSON, not an object, no list of choices: garbage, an upstream error
  event) may carry text nobody screened, so a fixed error event stands in for them, as a barrier;
- events without text and without anything final (a role preamble, an SSE comment, a keep-alive) become a
  non-barrier `Passthrough`;
- text becomes `TextDelta(key, text)`, one key per *channel*: a (choice, field) pair such as choice 0's
  `content`, its `reasoning_content`, or the arguments of its tool call 2. Each channel is held back and
  screened on its own (a value never spans two fields), and released text is re-rendered into the same
  field by `render_text`. What else the event carried (a finish reason, usage, a role, a tool call's id and
  name) goes on as a re-rendered `Passthrough` of the event without its text: before the deltas when it
  is only a preamble, after them (as a barrier) when it is final;
- strings the dialect cannot re-render (fields it does not know) ride on a barrier `Passthrough` as
  `texts`: screened whole before the event goes, and the stream is refused if they would need changing.

Per-token `logprobs` repeat the text (and arrive before it is screened), so they are dropped (`null`)
from every event the guard re-renders and from any event that carries them.
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
# `TextDelta` keys of channels other than a choice's content start here (far above any choice index).
CHANNEL_KEYS = 1 << 30


def _sse_data(fields: bytes, payload: JsonObject) -> bytes:
    return fields + b"data: " + dumps(payload) + b"\n\n"


class OpenAIStreamReader(ABC):
    """Per-response state: the SSE parser, the last chunk's identity fields, the choices and channels seen."""

    object_name: str  # the chunks' `object`, used until the upstream has sent one
    content_channel: str  # the channel a refusal is written to

    def __init__(self, max_event_bytes: int) -> None:
        self._parser = SseParser(max_event_bytes)
        self._template: JsonObject = {"id": "guard", "object": self.object_name, "created": 0, "model": ""}
        self._choices: dict[int, None] = {}  # insertion-ordered set
        self._keys: dict[tuple[int, str], int] = {}  # (choice, channel) -> TextDelta key, other channels
        self._channels: dict[int, tuple[int, str]] = {}  # key -> (choice, channel)

    # --- dialect ---------------------------------------------------------------------------------------
    @abstractmethod
    def texts_of(self, choice: JsonObject) -> list[tuple[str, str]]:
        """The (channel, text) pairs a streamed choice carries, in the order they are rendered."""

    @abstractmethod
    def without_text(self, choice: JsonObject) -> JsonObject:
        """A copy of the choice with every channel's text and its logprobs removed."""

    def unrendered(self, choice: JsonObject) -> list[str]:
        """Strings in the choice that no channel re-renders (unknown fields): screened whole at a barrier."""
        return []

    @abstractmethod
    def is_final(self, choice: JsonObject) -> bool:
        """Whether the choice (its text removed) carries something that must wait for held text: a
        finish reason, or strings only screened whole."""

    @abstractmethod
    def has_preamble(self, choice: JsonObject) -> bool:
        """Whether the choice announces something its text belongs to (a role, a tool call's id and
        name): forwarded ahead of its text."""

    @abstractmethod
    def text_choice(self, index: int, channel: str, text: str, finish_reason: str | None) -> JsonObject:
        """A choice object carrying `text` in `channel`, in this API's shape."""

    # --- StreamReader ----------------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> Sequence[StreamPiece]:
        return [piece for event in self._parser.feed(chunk) for piece in self._pieces(event)]

    def finish(self) -> Sequence[StreamPiece]:
        return [piece for event in self._parser.finish() for piece in self._pieces(event)]

    def channel(self, key: int) -> tuple[int, str]:
        """The (choice, channel) a `TextDelta` key stands for: a choice's index is the key of its
        content, other channels have keys from `CHANNEL_KEYS` up."""
        return self._channels.get(key, (key, self.content_channel))

    def render_text(self, choice: int, text: str) -> bytes:
        index, channel = self.channel(choice)
        return _sse_data(b"", {**self._template, "choices": [self.text_choice(index, channel, text, None)]})

    def render_refusal(self, refusal_text: str) -> bytes:
        choices = list(self._choices) or [0]
        events = [
            _sse_data(
                b"", {**self._template, "choices": [self.text_choice(i, self.content_channel, refusal_text, "content_filter")]}
            )
            for i in choices
        ]
        return b"".join(events) + _DONE

    # --- internals -------------------------------------------------------------------------------------
    def _key(self, index: int, channel: str) -> int:
        if channel == self.content_channel:
            return index
        key = self._keys.get((index, channel))
        if key is None:
            key = self._keys[(index, channel)] = CHANNEL_KEYS + len(self._keys)
            self._channels[key] = (index, channel)
        return key

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
        unrendered: list[str] = []
        for choice in choices:
            index = _index(choice)
            self._choices.setdefault(index, None)
            for channel, text in self.texts_of(choice):
                if text:
                    deltas.append(TextDelta(self._key(index, channel), text))
            unrendered += self.unrendered(choice)
        texts = tuple(unrendered)
        final = payload.get("usage") is not None or any(self.is_final(c) for c in choices)
        if not deltas and all(c.get("logprobs") is None for c in choices):
            return [Passthrough(event.raw, barrier=final, texts=texts)]
        rest = _sse_data(event.field_lines(), {**payload, "choices": [self.without_text(c) for c in choices]})
        if final or not deltas:
            return [*deltas, Passthrough(rest, barrier=final, texts=texts)]
        if any(self.has_preamble(c) for c in choices):
            return [Passthrough(rest, barrier=False), *deltas]
        return deltas

    def _remember(self, payload: JsonObject) -> None:
        if "id" in payload:
            self._template = {key: payload[key] for key in _TEMPLATE_KEYS if key in payload}
            self._template.setdefault("object", self.object_name)


def _index(choice: JsonObject) -> int:
    index = choice.get("index", 0)
    return index if isinstance(index, int) and not isinstance(index, bool) else 0
