"""guard/codecs/openai_completions.py: legacy completion requests, answers, refusals and streams."""

from __future__ import annotations

import json

import pytest
from openai.types import Completion

from guard.codecs.base import BodyLimits, Passthrough, TextDelta
from guard.codecs.openai_completions import OpenAICompletionsCodec
from guard.errors import RequestError
from guard.types import Action, Category, Decision, Direction

CODEC = OpenAICompletionsCodec(BodyLimits(max_body_bytes=1 << 20, max_json_depth=8))

ANSWER = {
    "id": "cmpl-1",
    "object": "text_completion",
    "created": 1700000000,
    "model": "m",
    "choices": [
        {"text": " secret 555-1234", "index": 0, "logprobs": {"tokens": [" secret"]}, "finish_reason": "length"},
        {"text": " other", "index": 1, "logprobs": None, "finish_reason": "stop"},
    ],
}


def test_prompt_forms_and_suffix() -> None:
    one = CODEC.extract(b'{"model": "m", "prompt": "Say \\"hi\\"", "suffix": "end", "stream": true}', Direction.INPUT)
    assert [(s.text, s.role) for s in one.slots] == [('Say "hi"', "prompt"), ("end", "suffix")]
    assert one.stream
    many = CODEC.extract(b'{"prompt": ["a", "b"], "suffix": null}', Direction.INPUT)
    assert [(s.index, s.text) for s in many.slots] == [(0, "a"), (1, "b")]
    assert not many.stream


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'"x"', "request body: must be a JSON object, not a string"),
        (b'{"model": "m"}', "request body: prompt is required"),
        (b'{"prompt": [1, 2, 3]}', "request body: prompt[0] must be a string or a list of strings (token arrays cannot be screened), not a number"),
        (b'{"prompt": 5}', "request body: prompt must be a string or a list of strings (token arrays cannot be screened), not a number"),
        (b'{"prompt": "a", "suffix": 1}', "request body: suffix must be a string or null, not a number"),
    ],
)
def test_wrong_shapes(body: bytes, message: str) -> None:
    with pytest.raises(RequestError) as caught:
        CODEC.extract(body, Direction.INPUT)
    assert (caught.value.status, caught.value.message) == (400, message)


def test_answer_texts_and_rewrite() -> None:
    body = json.dumps(ANSWER, indent=1).encode()
    extraction = CODEC.extract(body, Direction.OUTPUT)
    assert [(s.index, s.text, s.role) for s in extraction.slots] == [(0, " secret 555-1234", "assistant"), (1, " other", "assistant")]
    out = CODEC.rewrite(body, extraction, {0: " secret <PHONE>"})
    # The redacted choice's logprobs (which spell its tokens) become null; every other byte stays.
    logprobs = json.dumps(ANSWER["choices"][0]["logprobs"], indent=1).replace("\n", "\n   ").encode()  # type: ignore[index]
    assert out == body.replace(b"555-1234", b"<PHONE>").replace(logprobs, b"null")
    assert json.loads(out)["choices"][0]["logprobs"] is None
    with pytest.raises(RequestError, match=r"choices\[0\].text must be a string, not a number"):
        CODEC.extract(b'{"choices": [{"text": 1}]}', Direction.OUTPUT)


def test_refusals() -> None:
    decision = Decision(Action.BLOCK, Direction.INPUT, "t", "v", categories=(Category.MANIPULATION,))
    reply = CODEC.refuse_input(decision, "no")
    assert reply.status == 400
    assert json.loads(reply.body)["error"]["code"] == "content_filter"
    assert json.loads(reply.body)["error"]["categories"] == ["manipulation"]
    body = json.dumps(ANSWER).encode()
    refused = json.loads(CODEC.refuse_output(body, CODEC.extract(body, Direction.OUTPUT), "Refused."))
    Completion.model_validate(refused)
    assert [(c["text"], c["finish_reason"], c["logprobs"]) for c in refused["choices"]] == [
        ("Refused.", "content_filter", None),
        ("Refused.", "content_filter", None),
    ]


def event(text: str, finish: str | None = None, index: int = 0) -> bytes:
    payload = {
        "id": "cmpl-2", "object": "text_completion", "created": 5, "model": "m",
        "choices": [{"text": text, "index": index, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def test_stream() -> None:
    reader = CODEC.stream_reader()
    pieces = [*reader.feed(event("Hel") + event("", index=1) + event("lo", "stop")), *reader.feed(b"data: [DONE]\n\n")]
    assert pieces[:3] == [TextDelta(0, "Hel"), Passthrough(event("", index=1), barrier=False), TextDelta(0, "lo")]
    assert isinstance(pieces[3], Passthrough) and pieces[3].barrier
    rest = json.loads(pieces[3].raw[6:])
    assert rest["choices"] == [{"text": "", "index": 0, "logprobs": None, "finish_reason": "stop"}]
    assert pieces[4] == Passthrough(b"data: [DONE]\n\n", barrier=True)
    rendered = json.loads(reader.render_text(1, "x")[6:])
    assert {k: rendered[k] for k in ("id", "object", "created", "model")} == {
        "id": "cmpl-2", "object": "text_completion", "created": 5, "model": "m"
    }
    assert rendered["choices"] == [{"text": "x", "index": 1, "logprobs": None, "finish_reason": None}]
    refusal = reader.render_refusal("No.").split(b"\n\n")
    assert refusal[-2:] == [b"data: [DONE]", b""]
    assert [json.loads(e[6:])["choices"][0]["index"] for e in refusal[:-2]] == [0, 1]
    for refusal_event in refusal[:-2]:
        payload = Completion.model_validate(json.loads(refusal_event[6:]))
        assert payload.choices[0].finish_reason == "content_filter"
