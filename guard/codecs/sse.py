"""Incremental parser for `text/event-stream` bodies (the WHATWG/W3C server-sent events rules).

Bytes arrive in arbitrary chunks; `SseParser.feed` returns each event once its terminating blank line has
arrived, with the exact raw bytes it was made of, so an event can be forwarded untouched. Lines end with
`\\r\\n`, `\\n` or `\\r`; a chunk that ends in `\\r` is held until the next byte says whether a `\\n` follows,
so any chunking of the same bytes yields the same events. Lines are decoded only once complete, so a chunk
boundary inside a multibyte UTF-8 character is harmless; invalid UTF-8 decodes to U+FFFD as the standard
says. Unlike a browser, `finish` also returns a trailing event that lacks its blank line (an upstream
that closes right after `data: [DONE]`), and blocks without data (comments, stray blank lines) are
returned too, so the caller can pass them through. An event longer than `max_event_bytes` raises
`UpstreamError` (the proxy ends the stream there, having released nothing unscreened).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from guard.errors import UpstreamError

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One event as received. `data` joins the `data:` lines with `\\n` and is None when the block had
    none (only comments, `retry:`, or a lone blank line). `fields` lists the other fields in order."""

    raw: bytes
    data: str | None
    event: str = ""
    fields: tuple[tuple[str, str], ...] = ()

    def field_lines(self) -> bytes:
        """The non-data fields as SSE lines, for re-rendering an event that keeps its `event:`/`id:`."""
        return b"".join(f"{name}: {value}\n".encode() for name, value in self.fields)


def _parse_block(raw: bytes, lines: list[bytes], first_in_stream: bool) -> SseEvent:
    data: list[str] = []
    event = ""
    fields: list[tuple[str, str]] = []
    for number, line_bytes in enumerate(lines):
        line = line_bytes.decode("utf-8", "replace")
        if number == 0 and first_in_stream:
            line = line.removeprefix("\ufeff")  # one leading BOM is not part of the stream
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        else:
            if name == "event":
                event = value
            fields.append((name, value))
    return SseEvent(raw, "\n".join(data) if data else None, event, tuple(fields))


class SseParser:
    """Per-stream SSE state: the bytes of the event being received and its complete lines so far."""

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self._max_event_bytes = max_event_bytes
        self._buffer = bytearray()  # starts at the first byte of the event being received
        self._scan = 0  # where the next line starts in the buffer
        self._lines: list[bytes] = []
        self._first = True

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Add bytes; return the events they complete."""
        self._buffer += chunk
        events = self._drain(final=False)
        if self._max_event_bytes is not None and len(self._buffer) > self._max_event_bytes:
            # An event that never ends would grow without bound; the proxy ends the stream on this.
            raise UpstreamError(f"upstream sent an SSE event longer than {self._max_event_bytes} bytes")
        return events

    def finish(self) -> list[SseEvent]:
        """The stream ended: a last partial line counts as complete, and a last block as an event."""
        events = self._drain(final=True)
        if self._scan < len(self._buffer):
            self._lines.append(bytes(self._buffer[self._scan :]))
        if self._buffer:
            events.append(self._event(bytes(self._buffer)))
            self._buffer.clear()
            self._scan = 0
        return events

    def _event(self, raw: bytes) -> SseEvent:
        event = _parse_block(raw, self._lines, self._first)
        self._first = False
        self._lines = []
        return event

    def _drain(self, final: bool) -> list[SseEvent]:
        events: list[SseEvent] = []
        buffer = self._buffer
        size = len(buffer)
        start = 0  # of the current event; consumed bytes are dropped once, at the end
        scan = self._scan
        while True:
            match = _LINE_END.search(buffer, scan)
            if match is None:
                break
            if not final and match.end() == size and buffer[match.start()] == 0x0D:
                break  # a trailing \r may be the first half of \r\n
            line_start, scan = scan, match.end()
            if match.start() == line_start:  # blank line: the block ends here
                events.append(self._event(bytes(buffer[start:scan])))
                start = scan
            else:
                self._lines.append(bytes(buffer[line_start : match.start()]))
        del buffer[:start]
        self._scan = scan - start
        return events
