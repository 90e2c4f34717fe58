"""The `Codec` extension point: where the screenable text lives in an API's bodies, and how to rewrite it.

A codec knows one API's shapes (OpenAI chat completions, completions, a JSON body with configured field
paths, plain text); it knows nothing of policies or detectors. The proxy calls it like this:

    extraction = codec.extract(body, Direction.INPUT)       # RequestError(400/415/422) on bad bodies
    ... screen [slot.text for slot in extraction.slots], decide ...
    body = codec.rewrite(body, extraction, {slot_index: new_text})   # redaction, review edits
    reply = codec.refuse_input(decision, message)            # blocked prompt: HTTP 400, API-shaped
    body = codec.refuse_output(body, extraction, refusal)    # blocked answer: 200, finish_reason content_filter

`rewrite` changes only the bytes of the replaced texts: every other byte of the body (key order, spacing,
escapes, numbers) stays as the client or upstream sent it.

For streamed output (`text/event-stream`), `stream_reader()` gives a per-response `StreamReader` that
parses SSE bytes into `TextDelta`s (text the guard must screen before release) and `Passthrough`
events (role preambles, finish events, usage, keep-alives), and renders released text and refusals back
into the API's event shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from guard.types import Decision, Direction


@dataclass(frozen=True, slots=True)
class TextSlot:
    """One screenable text in a body. `role` is the chat role or field name it came from ("tool",
    "system", "user", ...), so detectors of retrieved/tool content can tell it apart."""

    index: int
    text: str
    role: str = ""


@dataclass(frozen=True, slots=True)
class TextEdit:
    """Replace `text[start:end]` of one slot's text (character offsets, end exclusive, as in `Span`) with
    `replacement`. Passing edits instead of a whole new text to `rewrite` keeps every unedited character's
    raw bytes (including its escapes) exactly as they were."""

    start: int
    end: int
    replacement: str


# A slot's new text: the whole text, or sorted, non-overlapping edits of it.
Replacement = str | Sequence[TextEdit]


@dataclass(frozen=True, slots=True)
class Extraction:
    """The texts found in a body, whether the caller asked for a streamed answer, and the codec's own
    notes for `rewrite` (e.g. where each string literal sits in the raw bytes)."""

    slots: tuple[TextSlot, ...]
    stream: bool = False
    handle: object = None


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete HTTP answer the guard gives instead of the upstream's."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of streamed model text, to be screened before release. `choice` keys one text stream of
    the response that is held back and screened on its own: a choice, or one field of a choice (its
    reasoning, a tool call's arguments); `render_text` gets the same key back."""

    choice: int
    text: str


@dataclass(frozen=True, slots=True)
class Passthrough:
    """A streamed event forwarded as is. With `barrier`, every choice's held text must be screened and
    released before it (a finish or usage event); without, it may go at once (a role preamble, an SSE
    comment). `texts` are strings the event carries that the reader cannot re-render: they are screened
    whole before the event goes, and the stream is refused where they would need changing.

    `render`, when set, gives the bytes to send in place of `raw`, called once the held text before
    the event has been released: for final events that repeat the whole text (Responses' `*.done` and
    `response.completed`), which must carry what was released, redacted the same way."""

    raw: bytes
    barrier: bool = True
    texts: tuple[str, ...] = ()
    render: Callable[[], bytes] | None = None

    def bytes_to_send(self) -> bytes:
        return self.raw if self.render is None else self.render()


StreamPiece = TextDelta | Passthrough


class StreamReader(Protocol):
    """Per-response SSE state. Feeding the same bytes in any chunking gives the same pieces."""

    def feed(self, chunk: bytes) -> Sequence[StreamPiece]:
        """Parse more upstream bytes; return complete pieces (an incomplete event stays buffered)."""
        ...

    def finish(self) -> Sequence[StreamPiece]:
        """The upstream closed: return what is left (a trailing event without blank line, `[DONE]`)."""
        ...

    def render_text(self, choice: int, text: str) -> bytes:
        """One SSE event carrying released `text` for `choice`, shaped like the upstream's events."""
        ...

    def render_refusal(self, refusal_text: str) -> bytes:
        """The final events of a blocked stream: the refusal text, `finish_reason: "content_filter"` for
        every choice, and the API's end marker (`data: [DONE]`)."""
        ...


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Bounds on what a codec parses: refused with 413 (size) or 400 (depth)."""

    max_body_bytes: int
    max_json_depth: int
    max_texts: int = 10_000


class Codec(Protocol):
    name: str

    def extract(self, body: bytes, direction: Direction) -> Extraction:
        """Find the screenable texts. Raises `RequestError` (400 malformed/invalid UTF-8/too deep, 415
        wrong content, 422 wrong shape) with a message that says what is wrong and quotes no text."""
        ...

    def rewrite(self, body: bytes, extraction: Extraction, replacements: Mapping[int, Replacement]) -> bytes:
        """Replace the texts of the given slot indexes, leaving every other byte as it was. A whole new text
        changes only the bytes between its common prefix and suffix with the old one; `TextEdit`s change
        only the bytes of the edited ranges. Raises `ValueError` for unknown slots or bad edits (a bug in
        the caller, not bad input)."""
        ...

    def refuse_input(self, decision: Decision, message: str) -> Reply:
        """The answer to a blocked prompt (OpenAI shape: 400, `code: "content_filter"`, categories)."""
        ...

    def refuse_output(self, body: bytes, extraction: Extraction, refusal_text: str) -> bytes:
        """A non-streamed upstream answer rewritten to carry the refusal (OpenAI shape: every choice's
        text replaced, `finish_reason: "content_filter"`)."""
        ...

    def stream_reader(self) -> StreamReader | None:
        """A reader for this API's SSE output, or None where the API does not stream."""
        ...


@dataclass(frozen=True, slots=True)
class CodecSettings:
    """What a route's codec is built from: its kind and, for `json`, the field paths."""

    kind: str
    request_paths: tuple[str, ...] = field(default=())
    response_paths: tuple[str, ...] = field(default=())
