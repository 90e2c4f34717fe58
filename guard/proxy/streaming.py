"""Hold-back screening of streamed output: no model text leaves the guard before a detector has seen it.

Per choice, text waits in `pending`. When it reaches the tier's `window_chars` (0: at every delta) it is
screened; everything but the last `overlap_chars` is released, so a span that straddles two steps is seen
whole in the next one. The release point never cuts a finding's span: it moves back to the span's start.
A barrier event (finish, usage, `[DONE]`) and the end of the upstream force screening and release of all
that is pending first. A block ends the stream with the reader's refusal events.

This module is I/O-free: `StreamScreen` turns upstream bytes into client bytes, and the pipeline supplies
`check` (screen + decide + review) and sends what comes out.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from guard.codecs.base import Passthrough, StreamPiece, StreamReader, TextDelta
from guard.types import Span


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What `check` says about one choice's pending text.

    `spans`: every finding span (the release point must not cut one). `redact`: spans to replace in what
    is released. `replaced`: a reviewer's edit of the whole pending text, released as is.
    """

    block: bool = False
    spans: Sequence[Span] = ()
    redact: Sequence[Span] = ()
    replaced: str | None = None


Check = Callable[[int, str], Awaitable[StepOutcome]]
Redactor = Callable[[str, Sequence[Span]], str]


@dataclass(slots=True)
class StreamOutput:
    chunks: list[bytes] = field(default_factory=list)
    blocked: bool = False
    released_text: bool = False  # some model text is among `chunks`


def release_point(length: int, overlap: int, spans: Sequence[Span], final: bool) -> int:
    """How many leading characters may go: all when `final` (everything left has been screened whole);
    otherwise all but `overlap`, moved back to the start of any span the cut would fall inside."""
    if final:
        return length
    cut = max(0, length - overlap)
    moved = True
    while moved:
        moved = False
        for span in spans:
            if span.start < cut < span.end:
                cut = span.start
                moved = True
    return cut


class StreamScreen:
    """Per-response hold-back state over a codec's `StreamReader`."""

    def __init__(
        self,
        reader: StreamReader,
        check: Check,
        redactor: Redactor,
        refusal_text: str,
        window_chars: int,
        overlap_chars: int,
        record: Callable[[int, str], None] | None = None,
    ) -> None:
        """`record(choice, text)` is given every upstream text as it arrives (the audit digest,
        `guard.proxy.answer_caps.AnswerRecord`); without it the texts are kept for `seen_texts`."""
        self._reader = reader
        self._check = check
        self._redactor = redactor
        self._refusal_text = refusal_text
        self._window = window_chars
        self._overlap = overlap_chars
        self._pending: dict[int, str] = {}
        self._seen: dict[int, list[str]] = {}
        self._record = record or self._keep
        self.blocked = False
        self.first_text_at: float | None = None  # perf_counter of the first upstream text
        self.steps = 0

    def seen_texts(self) -> tuple[str, ...]:
        """Every choice's whole upstream text so far (for the audit record's HMAC, never logged)."""
        return tuple("".join(parts) for _, parts in sorted(self._seen.items()))

    def _keep(self, choice: int, text: str) -> None:
        self._seen.setdefault(choice, []).append(text)

    def refuse(self, message: str) -> StreamOutput:
        """End the stream now with refusal events carrying `message` (a cap was reached); held text is
        dropped, never released."""
        self.blocked = True
        self._pending.clear()
        return StreamOutput(chunks=[self._reader.render_refusal(message)], blocked=True)

    def held_chars(self) -> int:
        return sum(len(text) for text in self._pending.values())

    def held_bytes(self) -> int:
        return sum(len(text.encode("utf-8", "surrogatepass")) for text in self._pending.values())

    async def feed(self, chunk: bytes) -> StreamOutput:
        return await self._process(self._reader.feed(chunk))

    async def finish(self) -> StreamOutput:
        """The upstream ended: what it left buffered, then every choice's remaining text."""
        out = await self._process(self._reader.finish())
        if not out.blocked:
            await self._flush_all(out)
        return out

    async def _process(self, pieces: Sequence[StreamPiece]) -> StreamOutput:
        out = StreamOutput()
        for piece in pieces:
            if self.blocked:
                break
            if isinstance(piece, TextDelta):
                if not piece.text:
                    continue
                if self.first_text_at is None:
                    self.first_text_at = time.perf_counter()
                self._record(piece.choice, piece.text)
                pending = self._pending.get(piece.choice, "") + piece.text
                self._pending[piece.choice] = pending
                if len(pending) >= self._window:
                    await self._step(piece.choice, final=False, out=out)
            elif isinstance(piece, Passthrough):
                if piece.barrier:
                    await self._flush_all(out)
                    if self.blocked:
                        break
                out.chunks.append(piece.bytes_to_send())
        return out

    async def _flush_all(self, out: StreamOutput) -> None:
        for choice in sorted(self._pending):
            if self.blocked:
                return
            if self._pending[choice]:
                await self._step(choice, final=True, out=out)

    async def _step(self, choice: int, final: bool, out: StreamOutput) -> None:
        text = self._pending[choice]
        self.steps += 1
        outcome = await self._check(choice, text)
        if outcome.block:
            self.blocked = True
            self._pending.clear()
            out.blocked = True
            out.chunks.append(self._reader.render_refusal(self._refusal_text))
            return
        if outcome.replaced is not None:
            released, self._pending[choice] = outcome.replaced, ""
        else:
            cut = release_point(len(text), self._overlap, outcome.spans, final)
            released, self._pending[choice] = text[:cut], text[cut:]
            if outcome.redact and released:
                inside = [s for s in outcome.redact if s.end <= cut]
                if inside:
                    released = self._redactor(released, inside)
        if released:
            out.chunks.append(self._reader.render_text(choice, released))
            out.released_text = True
