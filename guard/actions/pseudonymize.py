"""Pseudonymisation for one exchange (issue 11): each personal value becomes a numbered, typed
placeholder (`<PERSON_1>`, `<EMAIL_ADDRESS_2>`), the same value always the same placeholder within the
exchange, and the model's answer gets the originals back, in whole texts or in a stream cut anywhere,
a placeholder split across chunks included.

The mapping lives only in a `Pseudonyms` object owned by the request's frame: it is never logged,
audited, exported or written anywhere; it goes when the exchange ends. Placeholders the caller typed
themselves are left alone on the way back unless this exchange issued them.

Not wired into the proxy yet: the `pseudonymize` policy action needs the pipeline to hand one
`Pseudonyms` from the input step to the output relay (see the issue 11 report).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from guard.actions.redact import merge_spans
from guard.types import Span

_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*)_(\d{1,6})>")
# Longest a placeholder can be, so a stream holds back at most this much of an unfinished one.
_MAX_PLACEHOLDER = 64
_PARTIAL = re.compile(r"<[A-Z0-9_]{0,60}$")


class Pseudonyms:
    """The value ↔ placeholder table of one exchange; numbering is per entity type, from 1."""

    def __init__(self) -> None:
        self._by_value: dict[tuple[str, str], str] = {}
        self._by_placeholder: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._by_placeholder)

    def placeholder_for(self, value: str, entity_type: str) -> str:
        key = (entity_type, value)
        found = self._by_value.get(key)
        if found is None:
            number = self._counts.get(entity_type, 0) + 1
            self._counts[entity_type] = number
            found = f"<{entity_type}_{number}>"
            self._by_value[key] = found
            self._by_placeholder[found] = value
        return found

    def pseudonymize(self, text: str, spans: Sequence[Span]) -> str:
        """`text` with each merged span replaced by its placeholder; nothing else changes."""
        pieces: list[str] = []
        cursor = 0
        for span in merge_spans(spans, len(text)):
            pieces.append(text[cursor : span.start])
            pieces.append(self.placeholder_for(text[span.start : span.end], span.entity_type))
            cursor = span.end
        pieces.append(text[cursor:])
        return "".join(pieces)

    def restore(self, text: str) -> str:
        """`text` with every placeholder this exchange issued replaced by its original value."""
        if not self._by_placeholder:
            return text
        return _PLACEHOLDER.sub(lambda m: self._by_placeholder.get(m.group(0), m.group(0)), text)


class StreamRestorer:
    """Restores placeholders in a text that arrives in pieces. `feed` returns what can be released now;
    an unfinished `<PERS...` at the end of a piece is held until the next one completes or breaks it;
    `finish` releases what is left."""

    def __init__(self, pseudonyms: Pseudonyms) -> None:
        self._pseudonyms = pseudonyms
        self._held = ""

    def feed(self, piece: str) -> str:
        text = self._held + piece
        partial = _PARTIAL.search(text[-_MAX_PLACEHOLDER:]) if text else None
        if partial is not None:
            cut = len(text) - (len(text[-_MAX_PLACEHOLDER:]) - partial.start())
            self._held, text = text[cut:], text[:cut]
        else:
            self._held = ""
        return self._pseudonyms.restore(text)

    def finish(self) -> str:
        rest, self._held = self._held, ""
        return self._pseudonyms.restore(rest)
