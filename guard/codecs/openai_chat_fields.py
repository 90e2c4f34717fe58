"""Where the text sits in chat completion bodies: every field a person or a model wrote (issue 9).

Request (`POST /v1/chat/completions`), per message: `content` (a string, or the `text` of `text` /
`input_text` parts and the `refusal` of `refusal` parts; image, audio and file parts carry no text),
`name`, `refusal`, `reasoning_content` / `reasoning`, the `arguments` of `tool_calls[*].function` and of
the legacy `function_call`. Beside the messages: `tools[*].function.description` and the legacy
`functions[*].description` (with every `description` inside their parameter schemas: they reach the model
as prompt text), `prediction.content`, `user`, and each string value of `metadata`.

Answer, per choice's `message`: `content`, `refusal`, `reasoning_content` / `reasoning`,
`audio.transcript`, tool-call and legacy function-call arguments. Each slot also records its choice, so a
redaction can drop that choice's `logprobs` (which spell the original tokens).

Shape errors name the field path, never the value.
"""

from __future__ import annotations

from dataclasses import dataclass

from guard.codecs.jsonscan import JsonStr
from guard.codecs.openai_common import response_choices, shape_error, type_name
from guard.types import Direction

TOOL_CALL_ROLE = "tool_call"
TOOL_DESCRIPTION_ROLE = "tool_description"
METADATA_ROLE = "metadata"
# Message fields besides `content` that hold free text, in the order they are reported.
_MESSAGE_TEXT_FIELDS = ("name", "refusal", "reasoning_content", "reasoning")
_ANSWER_TEXT_FIELDS = ("refusal", "reasoning_content", "reasoning")
# Content part types and the key of their text.
_TEXT_PARTS = {"text": "text", "input_text": "text", "refusal": "refusal"}
# Bounded walk of a parameter schema (depth is already bounded by the parser; this bounds the work).
_MAX_SCHEMA_NODES = 10_000


@dataclass(frozen=True, slots=True)
class Found:
    """A text in a body: its literal, slot role, and (answers only) the index into `choices`."""

    literal: JsonStr
    role: str
    choice: int | None = None


def _strings(value: object, key: str) -> JsonStr | None:
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, JsonStr) else None


def _call_texts(message: dict[str, object]) -> list[JsonStr]:
    """The arguments of each function tool call and of a legacy `function_call`."""
    texts: list[JsonStr] = []
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            arguments = _strings(call.get("function") if isinstance(call, dict) else None, "arguments")
            if arguments is not None:
                texts.append(arguments)
    legacy = _strings(message.get("function_call"), "arguments")
    if legacy is not None:
        texts.append(legacy)
    return texts


def _parts(where: str, content: list[object], role: str) -> list[Found]:
    texts: list[Found] = []
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            raise shape_error(Direction.INPUT, f"{where}.content[{j}] must be an object, not {type_name(part)}")
        kind = part.get("type")
        if not isinstance(kind, str):
            raise shape_error(Direction.INPUT, f"{where}.content[{j}].type must be a string")
        key = _TEXT_PARTS.get(kind)
        if key is None:
            continue
        text = part.get(key)
        if not isinstance(text, JsonStr):
            raise shape_error(
                Direction.INPUT, f"{where}.content[{j}].{key} must be a string, not {type_name(text)}"
            )
        texts.append(Found(text, role))
    return texts


def message_texts(i: int, message: object) -> list[Found]:
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        raise shape_error(Direction.INPUT, f"{where} must be an object, not {type_name(message)}")
    role = message.get("role")
    if not isinstance(role, str):
        problem = "is required" if role is None else f"must be a string, not {type_name(role)}"
        raise shape_error(Direction.INPUT, f"{where}.role {problem}")
    texts: list[Found] = []
    content = message.get("content")
    if isinstance(content, JsonStr):  # parse_json makes every string value a JsonStr
        texts.append(Found(content, role))
    elif isinstance(content, list):
        texts.extend(_parts(where, content, role))
    elif content is not None:  # null: an assistant turn with only tool calls
        raise shape_error(
            Direction.INPUT,
            f"{where}.content must be a string or a list of content parts, not {type_name(content)}",
        )
    texts.extend(Found(text, role) for key in _MESSAGE_TEXT_FIELDS if (text := _strings(message, key)))
    texts.extend(Found(text, TOOL_CALL_ROLE) for text in _call_texts(message))
    return texts


def _schema_descriptions(schema: object) -> list[JsonStr]:
    """Every `description` string inside a JSON schema (parameters of a tool), in document order."""
    found: list[JsonStr] = []
    stack: list[object] = [schema]
    visited = 0
    while stack and visited < _MAX_SCHEMA_NODES:
        node = stack.pop()
        visited += 1
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "description" and isinstance(value, JsonStr):
                    found.append(value)
                elif isinstance(value, (dict, list)):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return sorted(found, key=lambda literal: literal.start)


def _tool_texts(value: dict[str, object]) -> list[Found]:
    texts: list[Found] = []
    functions: list[object] = []
    tools = value.get("tools")
    if isinstance(tools, list):
        functions += [tool.get("function") for tool in tools if isinstance(tool, dict)]
    legacy = value.get("functions")
    if isinstance(legacy, list):
        functions += legacy
    for function in functions:
        if not isinstance(function, dict):
            continue
        description = _strings(function, "description")
        if description is not None:
            texts.append(Found(description, TOOL_DESCRIPTION_ROLE))
        texts.extend(Found(d, TOOL_DESCRIPTION_ROLE) for d in _schema_descriptions(function.get("parameters")))
    return texts


def request_texts(value: object) -> list[Found]:
    if not isinstance(value, dict):
        raise shape_error(Direction.INPUT, f"must be a JSON object, not {type_name(value)}")
    messages = value.get("messages")
    if messages is None:
        raise shape_error(Direction.INPUT, "messages is required")
    if not isinstance(messages, list):
        raise shape_error(Direction.INPUT, f"messages must be a list, not {type_name(messages)}")
    texts = [text for i, message in enumerate(messages) for text in message_texts(i, message)]
    texts += _tool_texts(value)
    prediction = value.get("prediction")
    predicted = prediction.get("content") if isinstance(prediction, dict) else None
    if isinstance(predicted, JsonStr):
        texts.append(Found(predicted, "prediction"))
    elif isinstance(predicted, list):
        texts += _parts("prediction", predicted, "prediction")
    user = _strings(value, "user")
    if user is not None:
        texts.append(Found(user, METADATA_ROLE))
    metadata = value.get("metadata")
    if isinstance(metadata, dict):
        texts += [Found(v, METADATA_ROLE) for v in metadata.values() if isinstance(v, JsonStr)]
    return texts


def response_texts(value: object) -> list[Found]:
    texts: list[Found] = []
    for i, choice in enumerate(response_choices(value)):
        message = choice.get("message")
        if message is None:
            continue
        if not isinstance(message, dict):
            raise shape_error(Direction.OUTPUT, f"choices[{i}].message must be an object, not {type_name(message)}")
        content = message.get("content")
        role = message.get("role")
        role = role if isinstance(role, str) else "assistant"
        if content is not None:
            if not isinstance(content, JsonStr):
                raise shape_error(
                    Direction.OUTPUT,
                    f"choices[{i}].message.content must be a string or null, not {type_name(content)}",
                )
            texts.append(Found(content, role, i))
        texts.extend(Found(text, role, i) for key in _ANSWER_TEXT_FIELDS if (text := _strings(message, key)))
        transcript = _strings(message.get("audio"), "transcript")
        if transcript is not None:
            texts.append(Found(transcript, "audio_transcript", i))
        texts.extend(Found(text, TOOL_CALL_ROLE, i) for text in _call_texts(message))
    return texts
