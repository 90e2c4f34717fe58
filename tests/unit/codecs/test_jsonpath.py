"""guard/codecs/jsonpath.py: configured field paths over any JSON API."""

from __future__ import annotations

import json

import pytest

from guard.codecs.base import BodyLimits
from guard.codecs.jsonpath import JsonPathCodec, parse_path
from guard.errors import ConfigError, RequestError
from guard.types import Action, Category, Decision, Direction

LIMITS = BodyLimits(max_body_bytes=1 << 20, max_json_depth=8, max_texts=5)
BODY = (
    b'{"prompt": "first", "input": {"messages": [{"text": "m0"}, {"text": 7}, {"text": "m\\u00e9"}]},'
    b' "items": [{"body": "b0"}, {"body": "b1"}], "odd key": {"x": "o1", "y": ["not", "direct"]}}'
)


def codec(request: list[str], response: list[str] | None = None) -> JsonPathCodec:
    return JsonPathCodec(LIMITS, request, response or [])


@pytest.mark.parametrize(
    ("path", "texts"),
    [
        ("$.prompt", ["first"]),
        ("$.input.messages[*].text", ["m0", "m\u00e9"]),
        ("$.items[1].body", ["b1"]),
        ("$['odd key'][*]", ["o1"]),
        ("$.items[5].body", []),
        ("$.missing.deeper", []),
        ("$", []),
        ("$.prompt[0]", []),
    ],
)
def test_paths_find_strings_only(path: str, texts: list[str]) -> None:
    extraction = codec([path]).extract(BODY, Direction.INPUT)
    assert [s.text for s in extraction.slots] == texts
    assert all(s.role == path for s in extraction.slots)


def test_whole_body_string_and_quoted_escapes() -> None:
    assert [s.text for s in codec(["$"]).extract(b'"all"', Direction.INPUT).slots] == ["all"]
    body = json.dumps({"it's": {"a\\b": "v"}}).encode()
    assert [s.text for s in codec(["$['it\\'s']['a\\\\b']"]).extract(body, Direction.INPUT).slots] == ["v"]


def test_each_string_once_in_path_order() -> None:
    extraction = codec(["$.items[*].body", "$.prompt", "$['prompt']", "$.items[0].body"]).extract(BODY, Direction.INPUT)
    assert [(s.index, s.text, s.role) for s in extraction.slots] == [
        (0, "b0", "$.items[*].body"),
        (1, "b1", "$.items[*].body"),
        (2, "first", "$.prompt"),
    ]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("prompt", "codec path 'prompt' must start with '$'; supported: $, .key, ['key'], [N], [*]"),
        ("$.a[", "codec path '$.a[' is not understood at character 4; supported: $, .key, ['key'], [N], [*]"),
        ("$..a", "codec path '$..a' is not understood at character 2; supported: $, .key, ['key'], [N], [*]"),
        ("$[-1]", "codec path '$[-1]' is not understood at character 2; supported: $, .key, ['key'], [N], [*]"),
        ("$['a]", "codec path \"$['a]\" is not understood at character 2; supported: $, .key, ['key'], [N], [*]"),
    ],
)
def test_bad_paths_are_config_errors(path: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_path(path)
    assert str(caught.value) == message


def test_direction_without_paths_reads_nothing() -> None:
    extraction = codec(["$.prompt"]).extract(b"not json at all", Direction.OUTPUT)
    assert extraction.slots == ()


def test_bad_bodies_and_limits() -> None:
    with pytest.raises(RequestError) as caught:
        codec(["$.a"]).extract(b'{"a": ', Direction.INPUT)
    assert caught.value.status == 400
    with pytest.raises(RequestError) as caught:
        codec([], ["$.a"]).extract(b'{"a": ', Direction.OUTPUT)
    assert caught.value.status == 502
    with pytest.raises(RequestError) as caught:
        codec(["$[*]"]).extract(json.dumps(["x"] * 6).encode(), Direction.INPUT)
    assert caught.value.status == 413


def test_rewrite_and_refusals() -> None:
    c = codec(["$.input.messages[*].text"], ["$.items[*].body"])
    extraction = c.extract(BODY, Direction.INPUT)
    assert c.rewrite(BODY, extraction, {1: "M\u00e9"}) == BODY.replace(b'"m\\u00e9"', b'"M\\u00e9"')
    reply = c.refuse_input(Decision(Action.BLOCK, Direction.INPUT, "t", "v", categories=(Category.PII,)), "Blocked.")
    assert reply.status == 400
    assert json.loads(reply.body) == {"error": {"message": "Blocked.", "type": "content_filter", "categories": ["pii"]}}
    answer = c.extract(BODY, Direction.OUTPUT)
    refused = c.refuse_output(BODY, answer, "Refused.")
    assert refused == BODY.replace(b'"b0"', b'"Refused."').replace(b'"b1"', b'"Refused."')
    assert c.stream_reader() is None
