"""The `StreamReader` for Ollama's NDJSON streams (`/api/chat`, `/api/generate`, `application/x-ndjson`).

One JSON object per line. A line's text (`message.content` for chat, `response` for generate) becomes
`TextDelta(0, ...)`, its reasoning (`message.thinking` / `thinking`) `TextDelta(1, ...)`: two channels that
are screened and released separately, re-rendered as lines of the same shape. What else a line carries:

- the final line (`done: true`, with `done_reason` and timings) becomes a barrier `Passthrough`, its text
  removed and its `context` (token ids of the whole, unredacted answer) dropped;
- a line with anything else (tool calls, images) is a barrier too, re-rendered without its text;
- a line with nothing but text (and its model, timestamp, role) is not forwarded: its text is re-rendered;
- a line that is not a JSON object, or that carries `error`, is replaced by a fixed error line (its bytes
  may hold text nobody screened), as a barrier.

A blocked stream ends with one well-formed final line: the refusal as the text, `done: true`,
`done_reason: "content_filter"`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from guard.codecs.base import Passthrough, StreamPiece, TextDelta
from guard.codecs.openai_common import JsonObject, dumps
from guard.errors import UpstreamError

WITHHELD_LINE = (
    b'{"error":"The model endpoint sent a line the guard could not screen, so it was withheld."}\n'
)
_TEMPLATE_KEYS = ("model", "created_at")
TEXT, THINKING = 0, 1
# Keys every line carries that say nothing the client must not see before the held text.
_ENVELOPE = frozenset({"role", "model", "created_at", "done"})


class OllamaStreamReader:
    """Per-response state: the partial line, the last line's model and timestamp. `chat` selects where
    the text sits (`message.content` or `response`)."""

    def __init__(self, chat: bool, max_line_bytes: int) -> None:
        self._chat = chat
        self._max = max_line_bytes
        self._buffer = bytearray()
        self._template: JsonObject = {"model": "", "created_at": ""}

    def feed(self, chunk: bytes) -> Sequence[StreamPiece]:
        self._buffer += chunk
        pieces: list[StreamPiece] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            line = bytes(self._buffer[: end + 1])
            del self._buffer[: end + 1]
            pieces.extend(self._pieces(line))
        if len(self._buffer) > self._max:
            raise UpstreamError(f"upstream sent an NDJSON line longer than {self._max} bytes")
        return pieces

    def finish(self) -> Sequence[StreamPiece]:
        line, self._buffer = bytes(self._buffer), bytearray()
        return self._pieces(line) if line.strip() else []

    def _holder(self, obj: JsonObject) -> JsonObject | None:
        if not self._chat:
            return obj
        message = obj.get("message")
        return message if isinstance(message, dict) else None

    def render_text(self, choice: int, text: str) -> bytes:
        return dumps(self._line(text if choice == TEXT else "", text if choice == THINKING else None, False)) + b"\n"

    def render_refusal(self, refusal_text: str) -> bytes:
        final = self._line(refusal_text, None, True)
        final["done_reason"] = "content_filter"
        return dumps(final) + b"\n"

    def _line(self, text: str, thinking: str | None, done: bool) -> JsonObject:
        body: JsonObject = {"content": text} if self._chat else {"response": text}
        if thinking is not None:
            body["thinking"] = thinking
        if self._chat:
            return {**self._template, "message": {"role": "assistant", **body}, "done": done}
        return {**self._template, **body, "done": done}

    def _pieces(self, line: bytes) -> list[StreamPiece]:
        if not line.strip():
            return [Passthrough(line, barrier=False)]
        try:
            obj = json.loads(line)
        except ValueError:
            return [Passthrough(WITHHELD_LINE, barrier=True)]
        if not isinstance(obj, dict) or "error" in obj:
            return [Passthrough(WITHHELD_LINE, barrier=True)]
        for key in _TEMPLATE_KEYS:
            if isinstance(obj.get(key), str):
                self._template[key] = obj[key]
        holder = self._holder(obj)
        text_key = "content" if self._chat else "response"
        deltas: list[StreamPiece] = []
        rest_holder: JsonObject = {}
        if holder is not None:
            for key, channel in ((text_key, TEXT), ("thinking", THINKING)):
                value = holder.get(key)
                if isinstance(value, str) and value:
                    deltas.append(TextDelta(channel, value))
            rest_holder = {k: v for k, v in holder.items() if k not in (text_key, "thinking")}
        final = obj.get("done") is True
        extra = any(v not in (None, "", [], {}) for k, v in rest_holder.items() if k not in _ENVELOPE)
        if not final and not extra:
            if not deltas and holder is not None and text_key in holder:
                return [Passthrough(line, barrier=False)]  # an empty delta: nothing held, nothing new
            if not deltas:
                return [Passthrough(self._rendered(obj, holder, text_key), barrier=True)]
            return deltas
        return [*deltas, Passthrough(self._rendered(obj, holder, text_key), barrier=True)]

    def _rendered(self, obj: JsonObject, holder: JsonObject | None, text_key: str) -> bytes:
        """The line without its text (kept as an empty string, as Ollama sends it) and its `context`."""
        out = {k: v for k, v in obj.items() if k != "context"}
        if holder is not None:
            cleaned = {k: v for k, v in holder.items() if k != "thinking"}
            cleaned[text_key] = ""
            if self._chat:
                out["message"] = cleaned
            else:
                out = {k: v for k, v in out.items() if k != "thinking"}
                out[text_key] = ""
        return dumps(out) + b"\n"
