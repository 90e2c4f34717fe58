"""Codec for OpenAI chat completions (`POST /v1/chat/completions`), JSON and SSE.

Which fields are screened in requests and answers is `openai_chat_fields`' job (every text a person or a
model wrote: content parts, names, refusals, reasoning, tool and legacy function-call arguments, tool
descriptions, `user`, `metadata`, audio transcripts). Every choice of an `n > 1` answer is its own texts.

When a redaction changes a choice's text, that choice's `logprobs` become `null`: their tokens spell the
original text (issue 15), and the guard cannot recompute them for the placeholder. A refused answer
drops them too. Streams never carry them (see `openai_stream`).

Streamed, each text field of each choice is its own channel (held back and screened on its own). Tool-call
and function-call arguments are JSON text: a placeholder may only replace characters inside a JSON
string of them, or the caller would reassemble broken arguments, so any other redaction refuses the
stream (`redactable`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from guard.codecs.base import Extraction, Replacement, TextSlot
from guard.codecs.jsonscan import JsonStr, SlotLiterals, check_slot_count, parse_json, string_values
from guard.codecs.jsonsplice import rewrite_slots, value_span
from guard.codecs.openai_chat_fields import TOOL_CALL_ROLE, Found, request_texts, response_texts
from guard.codecs.openai_common import JsonObject, OpenAIJsonCodec, refused_choice, response_choices
from guard.codecs.openai_stream import OpenAIStreamReader
from guard.types import Direction, Span

__all__ = ["TOOL_CALL_ROLE", "ChatLiterals", "ChatStreamReader", "OpenAIChatCodec", "logprobs_splices"]

# Delta fields whose string is a text channel of its own, rendered back into the same field.
_TEXT_FIELDS = ("content", "reasoning_content", "reasoning", "refusal")
_KNOWN_DELTA_KEYS = frozenset({"role", *_TEXT_FIELDS, "tool_calls", "function_call", "audio"})
_TOOL_CALL = "tool_calls."  # channel prefix, followed by the tool call's index
_FUNCTION_CALL = "function_call"
_TRANSCRIPT = "audio.transcript"


@dataclass(frozen=True, slots=True)
class ChatLiterals(SlotLiterals):
    """The extraction handle of answers whose choices carry logprobs: per slot, its index into `choices`."""

    choices: tuple[int | None, ...]


def logprobs_splices(extraction: Extraction, replacements: Mapping[int, Replacement]) -> list[tuple[int, int, str]]:
    """Raw splices that set `logprobs` to null on each choice a replacement touches (for `rewrite_slots`)."""
    handle = extraction.handle
    if not isinstance(handle, ChatLiterals) or not isinstance(handle.document.value, dict):
        return []
    changed = {handle.choices[i] for i in replacements if 0 <= i < len(handle.choices)}
    choices = handle.document.value.get("choices")
    splices: list[tuple[int, int, str]] = []
    for index in sorted(c for c in changed if c is not None):
        if isinstance(choices, list) and index < len(choices) and choices[index].get("logprobs") is not None:
            span = value_span(handle.document.text, ("choices", index, "logprobs"))
            if span is not None:
                splices.append((span[0], span[1], "null"))
    return splices


class OpenAIChatCodec(OpenAIJsonCodec):
    """Reads and rewrites chat completion requests and answers; refuses in OpenAI's shapes."""

    name = "openai_chat"

    def request_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        return [(found.literal, found.role) for found in request_texts(value)]

    def response_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        return [(found.literal, found.role) for found in response_texts(value)]

    def extract(self, body: bytes, direction: Direction) -> Extraction:
        document = parse_json(body, self._limits.max_json_depth, direction)
        found: list[Found]
        if direction is Direction.INPUT:
            found = request_texts(document.value)
            stream = isinstance(document.value, dict) and document.value.get("stream") is True
        else:
            found = response_texts(document.value)
            stream = False
        check_slot_count(len(found), self._limits.max_texts, direction)
        slots = tuple(TextSlot(i, str(f.literal), f.role) for i, f in enumerate(found))
        handle = ChatLiterals(document, tuple(f.literal for f in found), tuple(f.choice for f in found))
        return Extraction(slots, stream, handle)

    def rewrite(self, body: bytes, extraction: Extraction, replacements: Mapping[int, Replacement]) -> bytes:
        return rewrite_slots(body, extraction, replacements, logprobs_splices(extraction, replacements))

    def refused_answer(self, value: JsonObject, refusal_text: str) -> JsonObject:
        choices = []
        for choice in response_choices(value):
            message = choice.get("message")
            role = message.get("role") if isinstance(message, dict) else None
            # A fresh message: tool calls, audio, reasoning and annotations of a refused answer go too.
            refused_message = {"role": role if isinstance(role, str) else "assistant", "content": refusal_text}
            choices.append(refused_choice(choice, {"message": refused_message}))
        return {**value, "choices": choices}

    def stream_reader(self) -> ChatStreamReader:
        return ChatStreamReader(self._limits.max_body_bytes)


def _json_state(text: str, in_string: bool, escaped: bool) -> tuple[bool, bool]:
    """JSON lexer state (inside a string? after a backslash?) after reading `text`."""
    for char in text:
        if escaped:
            escaped = False
        elif in_string and char == "\\":
            escaped = True
        elif char == '"':
            in_string = not in_string
    return in_string, escaped


class ChatStreamReader(OpenAIStreamReader):
    """`chat.completion.chunk` events. Channels: `content`, `reasoning_content`, `reasoning`, `refusal`,
    `tool_calls.<index>` and `function_call` (their `arguments`), `audio.transcript`."""

    object_name = "chat.completion.chunk"
    content_channel = "content"

    def __init__(self, max_event_bytes: int) -> None:
        super().__init__(max_event_bytes)
        self._lexer: dict[int, tuple[bool, bool]] = {}  # per arguments channel: JSON state of what was released

    def texts_of(self, choice: JsonObject) -> list[tuple[str, str]]:
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return []
        texts = [(key, value) for key in _TEXT_FIELDS if isinstance(value := delta.get(key), str)]
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for position, call in enumerate(calls):
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(call, dict) and isinstance(function, dict):
                    arguments = function.get("arguments")
                    if isinstance(arguments, str):
                        texts.append((f"{_TOOL_CALL}{_call_index(call, position)}", arguments))
        function_call = delta.get("function_call")
        if isinstance(function_call, dict) and isinstance(function_call.get("arguments"), str):
            texts.append((_FUNCTION_CALL, function_call["arguments"]))
        audio = delta.get("audio")
        if isinstance(audio, dict) and isinstance(audio.get("transcript"), str):
            texts.append((_TRANSCRIPT, audio["transcript"]))
        return texts

    def without_text(self, choice: JsonObject) -> JsonObject:
        stripped = dict(choice)
        delta = choice.get("delta")
        if isinstance(delta, dict):
            rest = {k: v for k, v in delta.items() if k not in _TEXT_FIELDS}
            calls = rest.get("tool_calls")
            if isinstance(calls, list):
                rest["tool_calls"] = [_without_arguments(call) for call in calls]
            if isinstance(rest.get("function_call"), dict):
                rest["function_call"] = _without_arguments(rest["function_call"])
            audio = rest.get("audio")
            if isinstance(audio, dict) and "transcript" in audio:
                rest["audio"] = {k: v for k, v in audio.items() if k != "transcript"}
            stripped["delta"] = rest
        if "logprobs" in stripped:
            stripped["logprobs"] = None
        return stripped

    def unrendered(self, choice: JsonObject) -> list[str]:
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return []
        return string_values([v for k, v in delta.items() if k not in _KNOWN_DELTA_KEYS])

    def is_final(self, choice: JsonObject) -> bool:
        return choice.get("finish_reason") is not None or bool(self.unrendered(choice))

    def has_preamble(self, choice: JsonObject) -> bool:
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return False
        calls = delta.get("tool_calls")
        named = isinstance(calls, list) and any(
            isinstance(call, dict)
            and ("id" in call or (isinstance(call.get("function"), dict) and "name" in call["function"]))
            for call in calls
        )
        function_call = delta.get("function_call")
        return "role" in delta or named or (isinstance(function_call, dict) and "name" in function_call)

    def text_choice(self, index: int, channel: str, text: str, finish_reason: str | None) -> JsonObject:
        delta: JsonObject
        if channel.startswith(_TOOL_CALL):
            delta = {"tool_calls": [{"index": int(channel[len(_TOOL_CALL):]), "function": {"arguments": text}}]}
        elif channel == _FUNCTION_CALL:
            delta = {"function_call": {"arguments": text}}
        elif channel == _TRANSCRIPT:
            delta = {"audio": {"transcript": text}}
        else:
            delta = {channel: text}
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    def render_text(self, choice: int, text: str) -> bytes:
        if choice in self._lexer or self._is_arguments(choice):
            self._lexer[choice] = _json_state(text, *self._lexer.get(choice, (False, False)))
        return super().render_text(choice, text)

    def redactable(self, choice: int, text: str, spans: Sequence[Span]) -> bool:
        """Whether placeholders can replace `spans` of `text` (about to be released on channel `choice`)
        and keep the channel well-formed: always for prose; for JSON arguments only inside a string."""
        if not self._is_arguments(choice):
            return True
        in_string, escaped = self._lexer.get(choice, (False, False))
        cursor = 0
        for span in sorted(spans, key=lambda s: s.start):
            start = max(span.start, cursor)
            if span.end <= start:
                continue
            in_string, escaped = _json_state(text[cursor:start], in_string, escaped)
            inside = text[start : span.end]
            if not in_string or escaped or '"' in inside or "\\" in inside or any(c < " " for c in inside):
                return False
            cursor = span.end
        return True

    def _is_arguments(self, key: int) -> bool:
        _, channel = self.channel(key)
        return channel.startswith(_TOOL_CALL) or channel == _FUNCTION_CALL


def _call_index(call: JsonObject, position: int) -> int:
    index = call.get("index", position)
    return index if isinstance(index, int) and not isinstance(index, bool) else position


def _without_arguments(call: object) -> object:
    if not isinstance(call, dict):
        return call
    function = call.get("function")
    if isinstance(function, dict) and "arguments" in function:
        return {**call, "function": {**function, "arguments": ""}}
    if "arguments" in call:  # the legacy function_call object itself
        return {**call, "arguments": ""}
    return call
