"""Hold-back screening of streamed output: no model text leaves the guard before a detector has seen it.

Per text stream (a choice, or one field of it: see `TextDelta`), text waits in `pending`. When it reaches
the tier's `window_chars` (0: at every delta) it is screened; everything but the last `overlap_chars` is
released, so a span that straddles two steps is seen whole in the next one. The release point never
cuts a finding's span (it moves back to the span's start), nor a run of characters that could still be
part of a value the detectors have not seen whole yet (`value_start`): an address, card or IBAN longer
than the overlap is held from its first character, not released up to the cut (issue 9).
A barrier event (finish, usage, `[DONE]`) and the end of the upstream force screening and release of all
that is pending first; strings a barrier carries that the reader cannot re-render (`Passthrough.texts`)
are screened whole, and anything a detector would change in them refuses the stream. So does a
redaction the reader says it cannot render (`RedactionAware`, e.g. a placeholder outside a JSON string
of a tool call's arguments). A block ends the stream with the reader's refusal events.

This module is I/O-free: `StreamScreen` turns upstream bytes into client bytes, and the pipeline supplies
`check` (screen + decide + review) and sends what comes out.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

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

# The key `check` gets for `Passthrough.texts` (no text stream of the reader has it).
BARRIER_TEXT = -1
# How far back the release point may move to keep a run of value characters whole: longer than any value
# the detectors find (an email address is at most 254 characters, RFC 5321), short enough that text
# without spaces (CJK, a base64 blob) is still released as it streams.
MAX_VALUE_CHARS = 256
# A token: a run of non-space characters. Two tokens separated by one space or tab are one value run
# when either holds a digit (a card `4111 1111 ...`, an IBAN `GB82 WEST 1234 ...`, a phone `(212) 555-0187`).
_TOKEN = re.compile(r"\S+")
_DIGIT = re.compile(r"\d")


@runtime_checkable
class RedactionAware(Protocol):
    """A `StreamReader` that can say a redaction would break what it renders (JSON arguments)."""

    def redactable(self, choice: int, text: str, spans: Sequence[Span]) -> bool: ...


def value_start(text: str, cut: int) -> int:
    """`cut` moved back so that it splits no run of value characters: a token, or tokens joined through
    single spaces where either side has a digit. A run that reaches the end of `text` (or is followed
    only by one space there) may still grow, so it is held too when the cut is at or past its end.
    Never moves back more than `MAX_VALUE_CHARS`."""
    if cut <= 0:
        return 0
    length = len(text)
    floor = max(0, cut - MAX_VALUE_CHARS)
    run_start: int | None = None
    previous: tuple[int, int] | None = None
    for match in _TOKEN.finditer(text, floor):
        token = match.span()
        if previous is None or not _joined(text, previous, token):
            if token[0] >= cut:
                break  # a new run after the cut: the one that matters is the last before it
            run_start = token[0]
        previous = token
    if run_start is None or previous is None:
        return cut
    run_end = previous[1]
    open_at_end = run_end == length or (run_end == length - 1 and text[run_end] in " \t")
    if run_start < cut and (cut < run_end or open_at_end):
        return max(run_start, floor)
    return cut


def _joined(text: str, left: tuple[int, int], right: tuple[int, int]) -> bool:
    gap = text[left[1] : right[0]]
    return len(gap) == 1 and gap in " \t" and (
        _DIGIT.search(text, left[0], left[1]) is not None or _DIGIT.search(text, right[0], right[1]) is not None
    )


@dataclass(slots=True)
class StreamOutput:
    chunks: list[bytes] = field(default_factory=list)
    blocked: bool = False
    released_text: bool = False  # some model text is among `chunks`


def release_point(text: str, overlap: int, spans: Sequence[Span], final: bool) -> int:
    """How many leading characters of `text` may go: all when `final` (everything left has been screened
    whole); otherwise all but `overlap`, moved back to the start of any span the cut would fall inside
    and of any run of value characters it would split (`value_start`)."""
    if final:
        return len(text)
    cut = max(0, len(text) - overlap)
    # Value runs move the cut back at most MAX_VALUE_CHARS from where it started: re-applied on every pass,
    # a long run of digit-bearing words ("item1 item2 ...") would otherwise hold the whole stream back.
    # Detector spans may still move it further: a found value is never split.
    value_floor = max(0, cut - MAX_VALUE_CHARS)
    moved = True
    while moved:
        moved = False
        for span in spans:
            if span.start < cut < span.end:
                cut = span.start
                moved = True
        held = max(value_start(text, cut), min(cut, value_floor))
        if held < cut:
            cut, moved = held, True
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
                if piece.barrier or piece.texts:
                    await self._flush_all(out)
                    if not self.blocked and piece.texts:
                        await self._screen_whole(piece.texts, out)
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

    def _refuse(self, out: StreamOutput) -> None:
        self.blocked = True
        self._pending.clear()
        out.blocked = True
        out.chunks.append(self._reader.render_refusal(self._refusal_text))

    async def _screen_whole(self, texts: Sequence[str], out: StreamOutput) -> None:
        """Strings of an event the reader forwards as is: anything that would change them refuses."""
        for text in texts:
            if not text:
                continue
            self._seen.setdefault(BARRIER_TEXT, []).append(text)
            self.steps += 1
            outcome = await self._check(BARRIER_TEXT, text)
            if outcome.block or outcome.redact or outcome.replaced is not None:
                self._refuse(out)
                return

    async def _step(self, choice: int, final: bool, out: StreamOutput) -> None:
        text = self._pending[choice]
        self.steps += 1
        outcome = await self._check(choice, text)
        if outcome.block:
            self._refuse(out)
            return
        if outcome.replaced is not None:
            released, self._pending[choice] = outcome.replaced, ""
        else:
            cut = release_point(text, self._overlap, outcome.spans, final)
            released, self._pending[choice] = text[:cut], text[cut:]
            if outcome.redact and released:
                inside = [s for s in outcome.redact if s.end <= cut]
                if inside:
                    if isinstance(self._reader, RedactionAware) and not self._reader.redactable(
                        choice, released, inside
                    ):
                        self._refuse(out)  # a placeholder here would break what the caller reassembles
                        return
                    released = self._redactor(released, inside)
        if released:
            out.chunks.append(self._reader.render_text(choice, released))
            out.released_text = True
