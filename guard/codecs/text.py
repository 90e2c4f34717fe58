"""Codec kind `text`: a `text/plain` UTF-8 body that is one text as a whole.

A refused prompt is answered `400 text/plain` with the message; a refused answer becomes the refusal text.
An empty body has no text to screen.
"""

from __future__ import annotations

from collections.abc import Mapping

from guard.codecs.base import BodyLimits, Extraction, Replacement, Reply, StreamReader, TextSlot
from guard.codecs.jsonscan import error_status
from guard.codecs.jsonsplice import as_edits
from guard.errors import RequestError
from guard.types import Decision, Direction

_CONTENT_TYPE = "text/plain; charset=utf-8"


class TextCodec:
    """The whole body is slot 0, with role "text"."""

    name = "text"

    def __init__(self, limits: BodyLimits) -> None:
        self._limits = limits

    def extract(self, body: bytes, direction: Direction) -> Extraction:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            status, code, noun = error_status(direction)
            raise RequestError(status, f"{noun} is not valid UTF-8 (byte {exc.start})", code) from None
        slots = (TextSlot(0, text, "text"),) if text else ()
        return Extraction(slots, False, text)

    def rewrite(self, body: bytes, extraction: Extraction, replacements: Mapping[int, Replacement]) -> bytes:
        if not replacements:
            return body
        if set(replacements) != {0} or not extraction.slots:
            raise ValueError(f"a text body has only slot 0; got {sorted(replacements)}")
        old = extraction.slots[0].text
        pieces: list[str] = []
        cursor = 0
        for edit in as_edits(old, replacements[0]):
            pieces += [old[cursor : edit.start], edit.replacement]
            cursor = edit.end
        pieces.append(old[cursor:])
        return "".join(pieces).encode("utf-8", "replace")  # a lone surrogate has no UTF-8 form

    def refuse_input(self, decision: Decision, message: str) -> Reply:
        return Reply(400, message.encode("utf-8", "replace"), _CONTENT_TYPE)

    def refuse_output(self, body: bytes, extraction: Extraction, refusal_text: str) -> bytes:
        return refusal_text.encode("utf-8", "replace")

    def stream_reader(self) -> StreamReader | None:
        return None
