"""`StreamScreen` over the real OpenAI chat stream reader: no unscreened text is released, the release
point never cuts a finding, barriers flush, a block ends the stream, and the released text does not
depend on how the upstream chunked it."""

from __future__ import annotations

import asyncio
import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from guard.actions.redact import redact
from guard.codecs.base import BodyLimits
from guard.codecs.registry import build_codec
from guard.policy.model import CodecConfig
from guard.proxy.streaming import StepOutcome, StreamScreen, release_point
from guard.types import Span

SECRET = re.compile(r"SECRET-\d{4}")
BASE = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def _event(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    return b"data: " + json.dumps({**BASE, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).encode() + b"\n\n"


def _stream(text: str, pieces: list[int]) -> bytes:
    """SSE bytes carrying `text` split at the given cut points, then a finish event and [DONE]."""
    cuts = sorted({p for p in pieces if 0 < p < len(text)})
    parts = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    return b"".join(_event(p) for p in parts) + _event(finish="stop") + b"data: [DONE]\n\n"


class _Checker:
    """A deterministic screening step: finds SECRET-dddd; blocks instead when `block` is set."""

    def __init__(self, block: bool = False) -> None:
        self.block = block
        self.seen: list[str] = []

    async def __call__(self, choice: int, text: str) -> StepOutcome:
        self.seen.append(text)
        spans = [Span(m.start(), m.end(), "SECRET") for m in SECRET.finditer(text)]
        if spans and self.block:
            return StepOutcome(block=True)
        return StepOutcome(spans=spans, redact=spans)


def _reader() -> object:
    return build_codec(CodecConfig(kind="openai_chat"), BodyLimits(1 << 20, 64)).stream_reader()


def _run(raw: bytes, byte_chunks: list[int], checker: _Checker, window: int, overlap: int) -> tuple[str, list[str], bool]:
    async def go() -> tuple[bytes, bool]:
        screen = StreamScreen(_reader(), checker, redact, "REFUSED", window, overlap)  # type: ignore[arg-type]
        out = b""
        cuts = sorted({c for c in byte_chunks if 0 < c < len(raw)})
        for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True):
            result = await screen.feed(raw[a:b])
            out += b"".join(result.chunks)
            if result.blocked:
                return out, True
        result = await screen.finish()
        return out + b"".join(result.chunks), result.blocked

    out, blocked = asyncio.run(go())
    text, reasons = "", []
    for line in out.decode().splitlines():
        if line.startswith("data: {"):
            choice = json.loads(line[6:])["choices"][0]
            text += (choice.get("delta") or {}).get("content") or ""
            if choice.get("finish_reason"):
                reasons.append(choice["finish_reason"])
    return text, reasons, blocked


TEXT = "Start of the answer. The code is SECRET-1234, and another SECRET-9876 follows; then plain prose ends."


def test_release_point_moves_back_to_a_span_start() -> None:
    spans = [Span(10, 20, "X"), Span(18, 30, "Y")]
    blank = " " * 40  # no value characters: only the spans move the cut
    assert release_point(blank, overlap=15, spans=spans, final=False) == 10  # 25 is inside Y, 18 inside X
    assert release_point(blank, overlap=5, spans=spans, final=False) == 35
    assert release_point(blank[:25], overlap=0, spans=spans, final=True) == 25  # the final step releases all
    assert release_point(blank[:5], overlap=10, spans=[], final=False) == 0


@settings(max_examples=60, deadline=None)
@given(
    text_cuts=st.lists(st.integers(0, len(TEXT)), max_size=12),
    byte_cuts=st.lists(st.integers(0, 2000), max_size=8),
    window=st.sampled_from([0, 1, 8, 24, 96]),
    overlap=st.sampled_from([11, 16, 48]),
)
def test_released_text_is_redacted_whatever_the_chunking(
    text_cuts: list[int], byte_cuts: list[int], window: int, overlap: int
) -> None:
    checker = _Checker()
    text, reasons, blocked = _run(_stream(TEXT, text_cuts), byte_cuts, checker, window, overlap)
    assert not blocked
    assert text == TEXT.replace("SECRET-1234", "<SECRET>").replace("SECRET-9876", "<SECRET>")
    assert reasons == ["stop"]  # the finish barrier came after every released text


def test_a_block_ends_the_stream_with_the_refusal() -> None:
    checker = _Checker(block=True)
    text, reasons, blocked = _run(_stream(TEXT, list(range(0, len(TEXT), 5))), [], checker, 8, 16)
    assert blocked
    assert "SECRET-" not in text
    assert text.endswith("REFUSED")
    assert reasons == ["content_filter"]
    assert "plain prose" not in text


def test_window_zero_screens_every_delta_and_nothing_goes_unseen() -> None:
    checker = _Checker()
    cuts = list(range(0, len(TEXT), 7))
    text, _, _ = _run(_stream(TEXT, cuts), [], checker, 0, 11)
    assert len(checker.seen) >= len(cuts)
    # Every released character was inside some screened text.
    assert "".join(checker.seen).count("SECRET-1234") >= 1
    assert "SECRET-" not in text
