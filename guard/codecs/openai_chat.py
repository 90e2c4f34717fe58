"""Codec for OpenAI chat completions (`POST /v1/chat/completions`), JSON and SSE.

Request texts: `messages[*].content` when it is a string, and the `text` of each `{"type": "text"}` part
when it is a list; the slot role is the message's role. Other part types (images, audio, files) carry no
text to screen and are skipped. Response texts: `choices[*].message.content` (null is skipped). In both
directions the arguments of function tool calls (`tool_calls[*].function.arguments`, a JSON-encoded
string the model wrote) are screened too, with slot role `tool_call`: personal data or an injection can
ride in them as well as in the content.
"""

from __future__ import annotations

from guard.codecs.jsonscan import JsonStr
from guard.codecs.openai_common import (
    JsonObject,
    OpenAIJsonCodec,
    refused_choice,
    response_choices,
    shape_error,
    type_name,
)
from guard.codecs.openai_stream import OpenAIStreamReader
from guard.types import Direction

# Delta keys that carry nothing final: the role announcement and the text itself.
_PLAIN_DELTA_KEYS = frozenset({"role", "content"})


TOOL_CALL_ROLE = "tool_call"


def _tool_call_texts(message: dict[str, object]) -> list[tuple[JsonStr, str]]:
    """The arguments string of each function tool call; other tool call shapes carry no model text."""
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return []
    texts: list[tuple[JsonStr, str]] = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if isinstance(arguments, JsonStr):
            texts.append((arguments, TOOL_CALL_ROLE))
    return texts


def _message_texts(i: int, message: object) -> list[tuple[JsonStr, str]]:
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        raise shape_error(Direction.INPUT, f"{where} must be an object, not {type_name(message)}")
    role = message.get("role")
    if not isinstance(role, str):
        problem = "is required" if role is None else f"must be a string, not {type_name(role)}"
        raise shape_error(Direction.INPUT, f"{where}.role {problem}")
    content = message.get("content")
    calls = _tool_call_texts(message)
    if content is None:
        return calls  # an assistant turn with only tool calls
    if isinstance(content, JsonStr):  # parse_json makes every string value a JsonStr
        return [(content, role), *calls]
    if not isinstance(content, list):
        raise shape_error(
            Direction.INPUT,
            f"{where}.content must be a string or a list of content parts, not {type_name(content)}",
        )
    texts: list[tuple[JsonStr, str]] = []
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            raise shape_error(Direction.INPUT, f"{where}.content[{j}] must be an object, not {type_name(part)}")
        kind = part.get("type")
        if not isinstance(kind, str):
            raise shape_error(Direction.INPUT, f"{where}.content[{j}].type must be a string")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, JsonStr):
                raise shape_error(
                    Direction.INPUT, f"{where}.content[{j}].text must be a string, not {type_name(text)}"
                )
            texts.append((text, role))
    return [*texts, *calls]


class OpenAIChatCodec(OpenAIJsonCodec):
    """Reads and rewrites chat completion requests and answers; refuses in OpenAI's shapes."""

    name = "openai_chat"

    def request_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        if not isinstance(value, dict):
            raise shape_error(Direction.INPUT, f"must be a JSON object, not {type_name(value)}")
        messages = value.get("messages")
        if messages is None:
            raise shape_error(Direction.INPUT, "messages is required")
        if not isinstance(messages, list):
            raise shape_error(Direction.INPUT, f"messages must be a list, not {type_name(messages)}")
        return [text for i, message in enumerate(messages) for text in _message_texts(i, message)]

    def response_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        texts: list[tuple[JsonStr, str]] = []
        for i, choice in enumerate(response_choices(value)):
            message = choice.get("message")
            if message is None:
                continue
            if not isinstance(message, dict):
                raise shape_error(
                    Direction.OUTPUT, f"choices[{i}].message must be an object, not {type_name(message)}"
                )
            content = message.get("content")
            if content is not None:
                if not isinstance(content, JsonStr):
                    raise shape_error(
                        Direction.OUTPUT,
                        f"choices[{i}].message.content must be a string or null, not {type_name(content)}",
                    )
                role = message.get("role")
                texts.append((content, role if isinstance(role, str) else "assistant"))
            texts.extend(_tool_call_texts(message))
        return texts

    def refused_answer(self, value: JsonObject, refusal_text: str) -> JsonObject:
        choices = []
        for choice in response_choices(value):
            message = choice.get("message")
            role = message.get("role") if isinstance(message, dict) else None
            # A fresh message: tool calls, audio and annotations of a refused answer go too.
            refused_message = {"role": role if isinstance(role, str) else "assistant", "content": refusal_text}
            choices.append(refused_choice(choice, {"message": refused_message}))
        return {**value, "choices": choices}

    def stream_reader(self) -> ChatStreamReader:
        return ChatStreamReader(self._limits.max_body_bytes)


class ChatStreamReader(OpenAIStreamReader):
    """`chat.completion.chunk` events: the text is `choices[*].delta.content`."""

    object_name = "chat.completion.chunk"

    def text_of(self, choice: JsonObject) -> str:
        delta = choice.get("delta")
        content = delta.get("content") if isinstance(delta, dict) else None
        return content if isinstance(content, str) else ""

    def without_text(self, choice: JsonObject) -> JsonObject:
        stripped = dict(choice)
        delta = choice.get("delta")
        if isinstance(delta, dict):
            stripped["delta"] = {k: v for k, v in delta.items() if k != "content"}
        if "logprobs" in stripped:
            stripped["logprobs"] = None
        return stripped

    def is_final(self, choice: JsonObject) -> bool:
        if choice.get("finish_reason") is not None:
            return True
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return False
        # Tool-call arguments, a refusal, audio: not screened here, so never sent ahead of held text.
        return any(v not in (None, "", [], {}) for k, v in delta.items() if k not in _PLAIN_DELTA_KEYS)

    def has_role(self, choice: JsonObject) -> bool:
        delta = choice.get("delta")
        return isinstance(delta, dict) and "role" in delta

    def text_choice(self, index: int, text: str, finish_reason: str | None) -> JsonObject:
        return {"index": index, "delta": {"content": text}, "logprobs": None, "finish_reason": finish_reason}
