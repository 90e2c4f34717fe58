"""Hold-back over values longer than the overlap, and over chat's other text channels (issue 9).

A value that started in held text is never partly released, whatever the chunking and window: the
release point stops at the start of any run that could still be part of a value. Tool-call arguments,
reasoning and refusals are held and screened like content; a redaction that would break the JSON of
tool-call arguments, or strings the reader cannot re-render, refuse the stream."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence

from hypothesis import example, given, settings
from hypothesis import strategies as st

from guard.actions.redact import redact
from guard.codecs.base import BodyLimits
from guard.codecs.openai_chat import ChatStreamReader, OpenAIChatCodec
from guard.proxy.streaming import MAX_VALUE_CHARS, StepOutcome, StreamScreen, value_start
from guard.types import Span

LONG_EMAIL = "a" * 30 + ".very.long.local.part." + "b" * 20 + "@example.com"  # 84 characters
IBAN = "GB82 WEST 1234 5698 7654 32"
CARD = "4111 1111 1111 1111"
TEXT = f"Write to {LONG_EMAIL} today. Pay into {IBAN}, or use card {CARD}. Thanks, that is all."
# A deterministic detector: finds each value only when it is complete.
VALUES = re.compile(r"[\w.]+@example\.com\b|GB\d\d WEST(?: \d{4}){3} \d\d\b|\b4111(?: 1111){3}\b")
BASE = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def _event(delta: dict[str, object], finish: str | None = None, logprobs: object = None) -> bytes:
    choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
    return b"data: " + json.dumps({**BASE, "choices": [choice]}).encode() + b"\n\n"


async def _find(choice: int, text: str) -> StepOutcome:
    spans = [Span(m.start(), m.end(), "VALUE") for m in VALUES.finditer(text)]
    return StepOutcome(spans=spans, redact=spans)


def _screen(window: int, overlap: int) -> tuple[StreamScreen, ChatStreamReader]:
    reader = OpenAIChatCodec(BodyLimits(1 << 20, 64)).stream_reader()
    return StreamScreen(reader, _find, redact, "REFUSED", window, overlap), reader


def _run(events: Sequence[bytes], window: int, overlap: int) -> list[dict[str, object]]:
    async def go() -> bytes:
        screen, _ = _screen(window, overlap)
        out = b""
        for event in events:
            out += b"".join((await screen.feed(event)).chunks)
        return out + b"".join((await screen.finish()).chunks)

    raw = asyncio.run(go()).decode()
    return [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")]


def _content(chunks: list[dict[str, object]], key: str = "content") -> list[str]:
    return [c["choices"][0]["delta"].get(key) or "" for c in chunks if c.get("choices")]  # type: ignore[index,union-attr]


@settings(max_examples=80, deadline=None)
@given(
    cuts=st.lists(st.integers(1, len(TEXT) - 1), max_size=30),
    window=st.sampled_from([0, 1, 8, 32, 96]),
    overlap=st.sampled_from([0, 4, 16, 48]),
)
@example(cuts=list(range(8, len(TEXT), 8)), window=32, overlap=16)  # the email straddles three windows
def test_no_value_is_partly_released_whatever_the_chunking(cuts: list[int], window: int, overlap: int) -> None:
    points = sorted(set(cuts))
    pieces = [TEXT[a:b] for a, b in zip([0, *points], [*points, len(TEXT)], strict=True)]
    released = _content(_run([*(_event({"content": p}) for p in pieces), _event({}, "stop")], window, overlap))
    assert "".join(released) == VALUES.sub("<VALUE>", TEXT)
    for value in (LONG_EMAIL, IBAN, CARD):
        assert not any(value[:6] in piece for piece in released)


def test_value_start_holds_the_run_and_is_bounded() -> None:
    text = "pay  GB82 WEST 1234 56"  # two spaces: "pay" is not part of the run
    assert value_start(text, len(text) - 2) == text.index("GB82")  # the run may still grow
    assert value_start("pay GB82 WEST", 9) == 0  # one space next to a token with a digit joins
    assert value_start("plain words here", 9) == 6  # inside "words"
    assert value_start("plain words here", 11) == 11  # right after "words", which a space closed
    assert value_start("plain words here", 12) == 12  # in the gap after a closed token
    blob = "x" * (3 * MAX_VALUE_CHARS)  # no spaces at all (a base64 blob, CJK text): still streams
    assert value_start(blob, len(blob)) == len(blob) - MAX_VALUE_CHARS


def test_tool_call_arguments_and_reasoning_are_held_and_redacted_per_channel() -> None:
    arguments = json.dumps({"to": LONG_EMAIL, "card": CARD})
    events = [
        _event({"role": "assistant", "content": ""}),
        *(_event({"reasoning_content": p}) for p in ("I will mail ", LONG_EMAIL[:40], LONG_EMAIL[40:], " now.")),
        _event({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "mail", "arguments": ""}}]}),
        *(_event({"tool_calls": [{"index": 0, "function": {"arguments": arguments[i : i + 9]}}]}) for i in range(0, len(arguments), 9)),
        _event({}, "tool_calls"),
    ]
    chunks = _run(events, 8, 4)
    reasoning = "".join(_content(chunks, "reasoning_content"))
    assert reasoning == "I will mail <VALUE> now."
    calls = [c["choices"][0]["delta"].get("tool_calls") for c in chunks if c["choices"][0]["delta"].get("tool_calls")]  # type: ignore[index,union-attr]
    assert calls[0][0]["id"] == "call_1" and calls[0][0]["function"]["name"] == "mail"
    assembled = "".join(call[0]["function"]["arguments"] for call in calls)
    assert json.loads(assembled) == {"to": "<VALUE>", "card": "<VALUE>"}
    assert all(c["choices"][0]["logprobs"] is None for c in chunks)  # type: ignore[index]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"  # type: ignore[index]


def test_a_placeholder_outside_a_json_string_refuses_the_stream() -> None:
    arguments = '{"card": 4111111111111111, "x": 1}'  # a number: "<VALUE>" there is not JSON

    async def find_digits(choice: int, text: str) -> StepOutcome:
        spans = [Span(m.start(), m.end(), "VALUE") for m in re.finditer(r"4111\d{12}", text)]
        return StepOutcome(spans=spans, redact=spans)

    async def go() -> bytes:
        reader = OpenAIChatCodec(BodyLimits(1 << 20, 64)).stream_reader()
        screen = StreamScreen(reader, find_digits, redact, "REFUSED", 8, 4)
        out = b""
        for i in range(0, len(arguments), 5):
            out += b"".join((await screen.feed(_event({"tool_calls": [{"index": 0, "function": {"arguments": arguments[i : i + 5]}}]}))).chunks)
        return out + b"".join((await screen.feed(_event({}, "stop"))).chunks)

    out = asyncio.run(go())
    assert b"4111" not in out and b"content_filter" in out and b"REFUSED" in out


def test_unknown_delta_strings_are_screened_whole_and_refuse_when_they_would_change() -> None:
    chunks = _run([_event({"content": "Hi."}), _event({"annotations": [{"note": f"card {CARD}"}]}), _event({}, "stop")], 96, 48)
    text = json.dumps(chunks)
    assert "4111" not in text and "content_filter" in text
    clean = _run([_event({"annotations": [{"note": "nothing here"}]}), _event({}, "stop")], 96, 48)
    assert clean[0]["choices"][0]["delta"]["annotations"] == [{"note": "nothing here"}]  # type: ignore[index]


def test_streamed_logprobs_never_pass() -> None:
    logprobs = {"content": [{"token": "4111", "logprob": -0.1, "bytes": None, "top_logprobs": []}]}
    chunks = _run([_event({"content": "card 4111 1111 1111 1111."}, logprobs=logprobs), _event({}, "stop", logprobs)], 96, 48)
    assert all(c["choices"][0]["logprobs"] is None for c in chunks)  # type: ignore[index]
    assert "".join(_content(chunks)) == "card <VALUE>."


def test_a_long_run_of_digit_words_still_streams() -> None:
    """200 "wordN" tokens join into one value run; the release point may hold back at most
    MAX_VALUE_CHARS of it, never the whole stream (the client-disconnect battery streams exactly this)."""
    from guard.proxy.streaming import MAX_VALUE_CHARS, release_point

    text = "".join(f"word{i} " for i in range(200))
    cut = release_point(text, 48, [], final=False)
    assert cut >= len(text) - 48 - MAX_VALUE_CHARS
