"""Property: through the real hold-back screen (`guard.proxy.streaming.StreamScreen`), a Responses stream's
final events (`*.done`, `response.completed`) carry exactly the text its deltas released, redacted the
same way, and an Anthropic stream's released deltas never hold a redacted value, whatever the deltas
and however the bytes are chunked. The check redacts every run of digits (a stand-in for a detector
with spans); no unredacted digit may ever reach the client."""

from __future__ import annotations

import asyncio
import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.codecs.anthropic_messages import AnthropicMessagesCodec
from guard.codecs.base import BodyLimits, StreamReader
from guard.codecs.openai_responses import OpenAIResponsesCodec
from guard.proxy.streaming import StepOutcome, StreamScreen
from guard.types import Span

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMITS = BodyLimits(max_body_bytes=1 << 20, max_json_depth=32)
DIGITS = re.compile(r"[0-9]+")
TEXT = st.text(alphabet="ab 0123456789é\"\\\n", max_size=12)


async def _check(choice: int, text: str) -> StepOutcome:
    spans = [Span(m.start(), m.end(), "NUMBER") for m in DIGITS.finditer(text)]
    return StepOutcome(spans=spans, redact=spans)


def _redactor(text: str, spans: object) -> str:
    return DIGITS.sub("<N>", text)


def _screen(reader: StreamReader, stream: bytes, cuts: list[int], window: int) -> str:
    screen = StreamScreen(reader, _check, _redactor, "No.", window, 4)

    async def run() -> bytes:
        out = b""
        points = sorted({c % (len(stream) + 1) for c in cuts})
        for start, end in zip([0, *points], [*points, len(stream)]):
            out += b"".join((await screen.feed(stream[start:end])).chunks)
        return out + b"".join((await screen.finish()).chunks)

    return asyncio.run(run()).decode()


def _events(out: str) -> list[dict[str, object]]:
    return [json.loads(line[6:]) for line in out.splitlines() if line.startswith("data: ")]


def _sse(kind: str, **payload: object) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n".encode()


@FAST
@given(st.lists(TEXT, min_size=1, max_size=6), st.lists(st.integers(0, 10_000), max_size=6), st.integers(0, 20))
def test_responses_final_events_equal_the_released_text(deltas: list[str], cuts: list[int], window: int) -> None:
    whole = "".join(deltas)
    at = {"item_id": "m", "output_index": 0, "content_index": 0}
    stream = b"".join([
        _sse("response.created", response={"id": "r", "output": []}),
        *[_sse("response.output_text.delta", **at, delta=d) for d in deltas],
        _sse("response.output_text.done", **at, text=whole),
        _sse("response.completed", response={"id": "r", "output": [
            {"id": "m", "type": "message", "content": [{"type": "output_text", "text": whole}]}]}),
    ])
    out = _screen(OpenAIResponsesCodec(LIMITS).stream_reader(), stream, cuts, window)
    events = _events(out)
    released = "".join(str(e["delta"]) for e in events if e["type"] == "response.output_text.delta")
    done = next(e for e in events if e["type"] == "response.output_text.done")
    completed = events[-1]
    assert completed["type"] == "response.completed"
    final = completed["response"]["output"][0]["content"][0]["text"]  # type: ignore[index]
    assert released == done["text"] == final
    assert not DIGITS.search(released)
    assert DIGITS.sub("", released.replace("<N>", "")) == DIGITS.sub("", whole)


@FAST
@given(st.lists(TEXT, min_size=1, max_size=6), st.lists(st.integers(0, 10_000), max_size=6), st.integers(0, 20))
def test_anthropic_released_deltas_are_redacted(deltas: list[str], cuts: list[int], window: int) -> None:
    stream = b"".join([
        _sse("message_start", message={"id": "m", "content": []}),
        _sse("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        *[_sse("content_block_delta", index=0, delta={"type": "text_delta", "text": d}) for d in deltas],
        _sse("content_block_stop", index=0),
        _sse("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 1}),
        _sse("message_stop"),
    ])
    out = _screen(AnthropicMessagesCodec(LIMITS).stream_reader(), stream, cuts, window)
    events = _events(out)
    released = "".join(str(e["delta"]["text"]) for e in events if e["type"] == "content_block_delta")  # type: ignore[index]
    assert not DIGITS.search(released)
    assert DIGITS.sub("", released.replace("<N>", "")) == DIGITS.sub("", "".join(deltas))
    assert [e["type"] for e in events][-2:] == ["message_delta", "message_stop"]
