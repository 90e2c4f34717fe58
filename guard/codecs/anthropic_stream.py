"""The `StreamReader` for Anthropic Messages streams (`event: message_start`, `content_block_*`, ...).

Each content block (its `index`) is one "choice" of the hold-back screen. `content_block_delta` events
carrying `text_delta.text`, `input_json_delta.partial_json` (a tool call's input, as JSON text) or
`thinking_delta.thinking` become `TextDelta`s; released text is re-rendered as a delta of the block's
kind. `content_block_start`, `content_block_stop`, `signature_delta` / `citations_delta`,
`message_delta` and `message_stop` are barriers (held text goes first); `ping` may overtake held text.
Text a `message_start` or `content_block_start` carries (servers normally send it empty) is blanked in
the forwarded event and screened as a delta. An event that is not a JSON object with a `type` is
withheld, and an `error` event stands in for it (the SDK raises its normal `APIStatusError`).

A blocked stream closes the open blocks, adds a `text` block with the refusal, and ends with
`message_delta` (`stop_reason: "refusal"`) and `message_stop`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from guard.codecs.base import Passthrough, StreamPiece, TextDelta
from guard.codecs.openai_common import JsonObject, dumps
from guard.codecs.sse import SseEvent, SseParser

# delta type -> the field that carries its text
_TEXT_DELTAS = {"text_delta": "text", "input_json_delta": "partial_json", "thinking_delta": "thinking"}
# block type -> (its delta type, the block's own text field)
_BLOCK_DELTAS = {"text": ("text_delta", "text"), "tool_use": ("input_json_delta", "input"),
                 "thinking": ("thinking_delta", "thinking")}
_WITHHELD = {
    "type": "error",
    "error": {
        "type": "api_error",
        "message": "The model endpoint sent an event the guard could not screen, so it was withheld.",
    },
}
_EMPTY_MESSAGE: JsonObject = {
    "id": "msg_guard", "type": "message", "role": "assistant", "model": "", "content": [],
    "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0},
}


def _sse(kind: str, payload: JsonObject) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + dumps(payload) + b"\n\n"


def _block_text(block: JsonObject) -> tuple[str, str] | None:
    """(delta type, text) for what a block carries at its start; None when it carries nothing."""
    spec = _BLOCK_DELTAS.get(str(block.get("type")))
    if spec is None:
        return None
    delta_type, field = spec
    value = block.get(field)
    if field == "input":
        if isinstance(value, dict) and value:
            block[field] = {}
            return delta_type, json.dumps(value, ensure_ascii=False)
        return None
    if isinstance(value, str) and value:
        block[field] = ""
        return delta_type, value
    return None


class AnthropicStreamReader:
    """Per-response state: the SSE parser, each block's delta kind, the blocks still open."""

    def __init__(self, max_event_bytes: int) -> None:
        self._parser = SseParser(max_event_bytes)
        self._kinds: dict[int, str] = {}  # block index -> delta type
        # What the client has been sent (not what was parsed): blocks started and not stopped, in order.
        self._open: dict[int, None] = {}
        self._started = False
        self._max_index = -1

    def feed(self, chunk: bytes) -> Sequence[StreamPiece]:
        return [piece for event in self._parser.feed(chunk) for piece in self._pieces(event)]

    def finish(self) -> Sequence[StreamPiece]:
        return [piece for event in self._parser.finish() for piece in self._pieces(event)]

    def render_text(self, choice: int, text: str) -> bytes:
        delta_type = self._kinds.get(choice, "text_delta")
        delta = {"type": delta_type, _TEXT_DELTAS[delta_type]: text}
        return _sse("content_block_delta", {"type": "content_block_delta", "index": choice, "delta": delta})

    def render_refusal(self, refusal_text: str) -> bytes:
        out = [] if self._started else [_sse("message_start", {"type": "message_start", "message": _EMPTY_MESSAGE})]
        for index in self._open:
            out.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        index = self._max_index + 1
        out += [
            _sse("content_block_start", {"type": "content_block_start", "index": index,
                                         "content_block": {"type": "text", "text": ""}}),
            _sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                         "delta": {"type": "text_delta", "text": refusal_text}}),
            _sse("content_block_stop", {"type": "content_block_stop", "index": index}),
            _sse("message_delta", {"type": "message_delta",
                                   "delta": {"stop_reason": "refusal", "stop_sequence": None},
                                   "usage": {"output_tokens": 0}}),
            _sse("message_stop", {"type": "message_stop"}),
        ]
        self._open.clear()
        return b"".join(out)

    def _pieces(self, event: SseEvent) -> list[StreamPiece]:
        if event.data is None:
            return [Passthrough(event.raw, barrier=False)]
        try:
            payload = json.loads(event.data)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            return [Passthrough(_sse("error", _WITHHELD), barrier=True)]
        kind = payload["type"]
        if kind == "ping":
            return [Passthrough(event.raw, barrier=False)]
        index = payload.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) else 0
        if kind == "content_block_delta":
            delta = payload.get("delta")
            delta_type = delta.get("type") if isinstance(delta, dict) else None
            if isinstance(delta, dict) and delta_type in _TEXT_DELTAS:
                self._kinds[index] = str(delta_type)
                text = delta.get(_TEXT_DELTAS[str(delta_type)])
                return [TextDelta(index, text)] if isinstance(text, str) and text else []
            return [Passthrough(event.raw, barrier=True)]
        if kind == "message_start":
            message = payload.get("message")
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list) and content:
                # Text in the opening message is not what servers send; blank it rather than pass it unread.
                for block in content:
                    if isinstance(block, dict):
                        _block_text(block)
                return [self._sent(event.field_lines() + b"data: " + dumps(payload) + b"\n\n", kind, 0)]
            return [self._sent(event.raw, kind, 0)]
        if kind == "content_block_start":
            block = payload.get("content_block")
            if isinstance(block, dict):
                spec = _BLOCK_DELTAS.get(str(block.get("type")))
                if spec is not None:
                    self._kinds[index] = spec[0]
                carried = _block_text(block)
                if carried is not None:
                    start = event.field_lines() + b"data: " + dumps(payload) + b"\n\n"
                    return [self._sent(start, kind, index), TextDelta(index, carried[1])]
        return [self._sent(event.raw, kind, index)]

    def _sent(self, raw: bytes, kind: str, index: int) -> Passthrough:
        """A barrier whose sending updates which blocks the client has seen open: events are parsed
        ahead of what a blocked stream releases, so a refusal must close only the blocks that left."""

        def render() -> bytes:
            if kind == "message_start":
                self._started = True
            elif kind == "content_block_start":
                self._open[index] = None
                self._max_index = max(self._max_index, index)
            elif kind == "content_block_stop":
                self._open.pop(index, None)
            return raw

        return Passthrough(raw, barrier=True, render=render)
