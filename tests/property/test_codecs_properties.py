"""Codec properties (hypothesis), each against an oracle that does not share the code under test.

1. `parse_json` accepts exactly what `json.loads` accepts (less duplicate keys, which it refuses on
   purpose) and returns the same values.
2. Every string value is located: generated bodies record, while they are written, where each decoded
   character's raw bytes start (plain, `\\uXXXX`, short escapes, surrogate pairs, odd whitespace).
3. `rewrite` never changes a byte outside the edited ranges, and the result decodes to the edited text.
4. `extract` then `rewrite` with no replacements, or with each slot's own text, is the identity.
5. The depth limit is exact.
6. Any chunking of an SSE byte stream gives the same events and the same stream pieces (chat and
   completions), the events' raw bytes add up to the stream, and the deltas add up to the generated text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from guard.codecs.base import BodyLimits, Passthrough, StreamPiece, TextDelta, TextEdit
from guard.codecs import jsonscan
from guard.codecs.jsonscan import parse_json
from guard.codecs.jsonsplice import escape_json, raw_offsets, rewrite_strings
from guard.codecs.openai_chat import OpenAIChatCodec
from guard.codecs.openai_completions import OpenAICompletionsCodec
from guard.codecs.sse import SseEvent, SseParser
from guard.errors import RequestError
from guard.types import Direction
from tests.fakes.json_strings import json_strings

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- generated JSON with known raw offsets --------------------------------------------------------------

_SHORT = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
CHARS = st.one_of(
    st.characters(exclude_categories=["Cs"]),
    st.sampled_from('"\\/\b\f\n\r\t\x00\x1f\u00e9\u2028\U0001f600'),
    st.integers(0xDC00, 0xDFFF).map(chr),  # lone low surrogates: only an escape can carry them
)
WS = st.text(alphabet=" \t\n\r", max_size=2)
NUMBERS = st.one_of(
    st.sampled_from(["0", "-0", "12", "3.25", "1e5", "-2.5E-3", "6.02e+23", "123456789012345678901234567890"]),
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


@dataclass(frozen=True)
class Literal:
    text: str
    offsets: tuple[int, ...]  # where each decoded character starts in the body text, then the closing quote


def _raw(draw: st.DrawFn, char: str) -> str:
    code = ord(char)
    forced = char in '"\\' or code < 0x20 or 0xD800 <= code <= 0xDFFF
    style = draw(st.integers(0, 2))
    if style == 0 and not forced:
        return char
    if style == 2 and char in _SHORT:
        return _SHORT[char]
    hexes = [f"{code:04x}"] if code < 0x10000 else [f"{0xD800 + ((code - 0x10000) >> 10):04x}", f"{0xDC00 + ((code - 0x10000) & 0x3FF):04x}"]
    upper = draw(st.booleans())
    return "".join("\\u" + (h.upper() if upper else h) for h in hexes)


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, list[Literal]]:
    out: list[str] = []
    size = 0
    literals: list[Literal] = []

    def emit(piece: str) -> None:
        nonlocal size
        out.append(piece)
        size += len(piece)

    def string(chars: str, record: bool) -> None:
        offsets = []
        emit('"')
        for char in chars:
            offsets.append(size)
            emit(_raw(draw, char))
        offsets.append(size)
        emit('"')
        if record:
            literals.append(Literal(chars, tuple(offsets)))

    def value(depth: int) -> None:
        kinds = ["str", "str", "num", "const"] + (["list", "obj"] if depth < 3 else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "str":
            string("".join(draw(st.lists(CHARS, max_size=8))), record=True)
        elif kind == "num":
            emit(draw(NUMBERS))
        elif kind == "const":
            emit(draw(st.sampled_from(["true", "false", "null"])))
        else:
            obj = kind == "obj"
            keys = draw(st.lists(st.text(CHARS, max_size=4), max_size=3, unique=True)) if obj else []
            count = len(keys) if obj else draw(st.integers(0, 3))
            emit(("{" if obj else "[") + draw(WS))
            for i in range(count):
                if i:
                    emit(draw(WS) + "," + draw(WS))
                if obj:
                    string(keys[i], record=False)
                    emit(draw(WS) + ":" + draw(WS))
                value(depth + 1)
            emit(draw(WS) + ("}" if obj else "]"))

    emit(draw(WS))
    value(0)
    emit(draw(WS))
    return "".join(out), literals


@FAST
@given(documents())
def test_every_string_is_located(document: tuple[str, list[Literal]]) -> None:
    text, literals = document
    parsed = parse_json(text.encode(), 10)
    assert parsed.value == json.loads(text)
    found = json_strings(parsed.value)
    assert [str(f) for f in found] == [lit.text for lit in literals]
    for literal, expected in zip(found, literals, strict=True):
        offsets = raw_offsets(text, literal)
        start = literal.start + 1
        assert tuple(offsets or range(start, start + len(literal) + 1)) == expected.offsets


@FAST
@given(documents(), st.integers(1, 5))
def test_fast_path_and_exact_walker_agree(document: tuple[str, list[Literal]], depth: int) -> None:
    # parse_json takes json.loads + a literal regex when it can, and the exact walker otherwise.
    text, _ = document
    try:
        walked = jsonscan._parse(text, depth)
    except jsonscan._Malformed as error:
        assert "nested deeper" in error.message
        assert jsonscan._parse_fast(text, depth) is jsonscan._SLOW
        return
    fast = jsonscan._parse_fast(text, depth)
    assert fast == walked
    assert [(s.start, s.end) for s in json_strings(fast)] == [(s.start, s.end) for s in json_strings(walked)]


@st.composite
def edits_for(draw: st.DrawFn, text: str) -> list[TextEdit]:
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=6)))
    return [TextEdit(cuts[i], cuts[i + 1], draw(st.text(max_size=5))) for i in range(0, len(cuts) - 1, 2)]


def apply(text: str, edits: list[TextEdit]) -> str:
    for edit in reversed(edits):
        text = text[: edit.start] + edit.replacement + text[edit.end :]
    return text


@FAST
@given(documents(), st.data())
@example(('{"a":"x\\ud83d\\ude00y"}', [Literal("x\U0001f600y", (6, 7, 19, 20))]), None)
def test_rewrite_changes_only_the_edited_ranges(document: tuple[str, list[Literal]], data: st.DataObject | None) -> None:
    text, literals = document
    assume(literals)
    if data is None:  # the pinned example: replace the astral character only
        k, edits = 0, [TextEdit(1, 2, "Z")]
    else:
        k = data.draw(st.integers(0, len(literals) - 1))
        edits = data.draw(edits_for(literals[k].text))
    parsed = parse_json(text.encode(), 10)
    out = rewrite_strings(parsed, [(json_strings(parsed.value)[k], edits)])
    # Oracle: the body's own characters around each edit, the escaped new text inside it.
    offsets = literals[k].offsets
    expected, cursor = [], 0
    for edit in edits:
        expected += [text[cursor : offsets[edit.start]], escape_json(edit.replacement)]
        cursor = offsets[edit.end]
    expected.append(text[cursor:])
    assert out == "".join(expected).encode()
    reparsed = [str(s) for s in json_strings(parse_json(out, 10).value)]
    assert reparsed == [lit.text for lit in literals[:k]] + [apply(literals[k].text, edits)] + [
        lit.text for lit in literals[k + 1 :]
    ]


@FAST
@given(documents(), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), st.text(max_size=5))
@example(('{"":"\\u003a:"}', [Literal("::", (5, 11, 12))]), 0, 0, 1, "")  # either colon may go: the later one does
def test_whole_text_replacement_changes_only_between_common_prefix_and_suffix(
    document: tuple[str, list[Literal]], k: int, start: int, end: int, inserted: str
) -> None:
    text, literals = document
    assume(literals)
    literal = literals[k % len(literals)]
    old = literal.text
    start, end = sorted((start % (len(old) + 1), end % (len(old) + 1)))
    new = old[:start] + inserted + old[end:]
    prefix = 0
    while prefix < min(len(old), len(new)) and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(old), len(new)) - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    parsed = parse_json(text.encode(), 10)
    out = rewrite_strings(parsed, [(json_strings(parsed.value)[k % len(literals)], new)]).decode()
    if new == old:
        assert out == text
    before, after = text[: literal.offsets[prefix]], text[literal.offsets[len(old) - suffix] :]
    assert out.startswith(before) and out.endswith(after) and len(out) >= len(before) + len(after)
    assert str(json_strings(parse_json(out.encode(), 10).value)[k % len(literals)]) == new


@FAST
@given(documents())
def test_extract_then_rewrite_without_changes_is_the_identity(document: tuple[str, list[Literal]]) -> None:
    text, literals = document
    body = ('{"messages": [{"role": "user", "content": ' + text.strip(" \t\n\r") + "}]}").encode()
    codec = OpenAIChatCodec(BodyLimits(1 << 20, 10))
    try:
        extraction = codec.extract(body, Direction.INPUT)
    except RequestError:
        assume(False)  # content that is neither a string nor a list of parts
        raise
    assert codec.rewrite(body, extraction, {}) == body
    assert codec.rewrite(body, extraction, {s.index: s.text for s in extraction.slots}) == body


JSONISH = st.text(alphabet=list('{}[],:" \\/\n\t\r\f\v\xa00123456789.-+eEtrufalsnNIiyu\u00e9\u0661x'), max_size=24)


@st.composite
def mutated_json(draw: st.DrawFn) -> str:
    text, _ = draw(documents())
    position = draw(st.integers(0, len(text)))
    action = draw(st.sampled_from(["delete", "insert", "keep"]))
    if action == "delete" and position < len(text):
        return text[:position] + text[position + 1 :]
    if action == "insert":
        return text[:position] + draw(st.sampled_from(list('{}[],:"\\ 0-.eE'))) + text[position:]
    return text


@FAST
@given(st.one_of(JSONISH, mutated_json()))
@example('{"a": 1, "a": 2}')
@example("[1,]")
@example('"\\ud800\\u12"')
def test_parse_accepts_exactly_what_json_loads_accepts(text: str) -> None:
    try:
        expected = json.loads(text)
    except (ValueError, RecursionError):
        try:
            parse_json(text.encode("utf-8", "surrogatepass"), 1000)
        except RequestError as error:
            assert error.status == 400
        else:
            raise AssertionError("parse_json accepted what json.loads refused") from None
        return
    try:
        got = parse_json(text.encode("utf-8", "surrogatepass"), 1000).value
    except RequestError as error:
        assert "duplicate key" in error.message
        return
    assert json.dumps(got) == json.dumps(expected)


@FAST
@given(st.text(alphabet=st.one_of(st.characters(), st.characters(max_codepoint=0x22), st.integers(0xD800, 0xDFFF).map(chr))))
def test_escaped_text_decodes_to_itself(text: str) -> None:
    literal = '"' + escape_json(text) + '"'
    # JSON cannot tell a lone high surrogate followed by a lone low one from the pair they form.
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")
    assert json.loads(literal) == joined
    assert literal.encode("utf-8")  # never a lone surrogate on the wire


@FAST
@given(st.lists(st.sampled_from(["[", '{"k":', "[1,", '{"a":0,"b":']), min_size=1, max_size=20), st.integers(1, 20))
def test_depth_limit_is_exact(openers: list[str], limit: int) -> None:
    closers = "".join("]" if opener.startswith("[") else "}" for opener in reversed(openers))
    body = ("".join(openers) + "null" + closers).encode()
    try:
        parse_json(body, limit)
    except RequestError as error:
        assert len(openers) > limit
        assert f"nested deeper than {limit} levels" in error.message
    else:
        assert len(openers) <= limit


# --- SSE ---------------------------------------------------------------------------------------------------

ENDINGS = st.sampled_from(["\n", "\r\n", "\r"])


@dataclass(frozen=True)
class GeneratedStream:
    raw: bytes
    texts: dict[int, str]  # what the content deltas add up to, per choice
    api: str = "chat"  # or "completions"


@st.composite
def streams(draw: st.DrawFn) -> GeneratedStream:
    api = draw(st.sampled_from(["chat", "completions"]))
    events: list[str] = []
    texts: dict[int, str] = {}
    for _ in range(draw(st.integers(0, 6))):
        nl = draw(ENDINGS)
        kind = draw(st.sampled_from(["content", "content", "role", "finish", "comment", "done", "other"]))
        if kind == "comment":
            events.append(":" + draw(st.text(alphabet=st.characters(exclude_characters="\r\n"), max_size=5)) + nl + nl)
            continue
        if kind == "done":
            events.append("data: [DONE]" + nl + nl)
            continue
        if kind == "other":
            events.append("event: ping" + nl + "id: 1" + nl + "data: {}" + nl + nl)
            continue
        choice = draw(st.integers(0, 1))
        content = "" if kind == "role" else draw(st.text(max_size=6))
        texts[choice] = texts.get(choice, "") + content
        finish = "stop" if kind == "finish" else None
        if api == "chat":
            delta = {"role": "assistant", "content": ""} if kind == "role" else {"content": content}
            body: dict[str, object] = {"index": choice, "delta": delta, "finish_reason": finish}
        else:
            body = {"text": content, "index": choice, "logprobs": None, "finish_reason": finish}
        payload = {
            "id": "c", "object": "chat.completion.chunk" if api == "chat" else "text_completion",
            "created": 1, "model": "m", "choices": [body],
        }
        data = json.dumps(payload, ensure_ascii=draw(st.booleans()))
        events.append("data:" + draw(st.sampled_from(["", " "])) + data + nl + nl)
    return GeneratedStream("".join(events).encode("utf-8"), texts, api)


def chunked(raw: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c % (len(raw) + 1) for c in cuts), len(raw)]
    return [raw[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def read_all(chunks: list[bytes], api: str = "chat") -> list[StreamPiece]:
    limits = BodyLimits(1 << 20, 10)
    reader = (OpenAIChatCodec(limits) if api == "chat" else OpenAICompletionsCodec(limits)).stream_reader()
    pieces: list[StreamPiece] = []
    for chunk in chunks:
        pieces += reader.feed(chunk)
    return pieces + list(reader.finish())


@FAST
@given(streams(), st.lists(st.integers(0, 10_000), max_size=12))
@example(GeneratedStream(b'data: {"choices": [{"index": 0, "delta": {"content": "\xc3\xa9"}}]}\r\r', {0: "\u00e9"}), [8, 57, 58])
@example(GeneratedStream(b"data: [DONE]\r\n\r\n", {}), [13, 14, 15])
def test_any_chunking_gives_the_same_pieces(stream: GeneratedStream, cuts: list[int]) -> None:
    whole = read_all([stream.raw], stream.api)
    assert read_all(chunked(stream.raw, cuts), stream.api) == whole
    one_byte = read_all([stream.raw[i : i + 1] for i in range(len(stream.raw))], stream.api)
    assert one_byte == whole
    released: dict[int, str] = {}
    for piece in whole:
        if isinstance(piece, TextDelta):
            released[piece.choice] = released.get(piece.choice, "") + piece.text
        else:
            assert isinstance(piece, Passthrough)
    assert released == {choice: text for choice, text in stream.texts.items() if text}


@FAST
@given(st.binary(max_size=60), st.lists(st.integers(0, 100), max_size=8))
@example(b"a\r", [2])
@example(b"\r\n\r", [1, 2])
def test_sse_events_are_lossless_and_chunking_free(raw: bytes, cuts: list[int]) -> None:
    def events(chunks: list[bytes]) -> list[SseEvent]:
        parser = SseParser()
        out = [e for chunk in chunks for e in parser.feed(chunk)]
        return out + parser.finish()

    whole = events([raw])
    assert events(chunked(raw, cuts)) == whole
    assert b"".join(e.raw for e in whole) == raw
