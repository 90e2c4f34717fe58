"""Codecs for Ollama's native API: `POST /api/chat` and `POST /api/generate`, JSON and NDJSON streams.

Chat request texts: each `messages[*].content` (role: the message's role) and `thinking`, every string
inside `messages[*].tool_calls[*].function.arguments` (an object in Ollama, role "tool_call"), and
`tools[*].function.description`. Generate request texts: `prompt`, `suffix`, `system`, `template`.
Answers: `message.content`, `message.thinking` and tool-call argument strings (chat), `response` and
`thinking` (generate). A redacted or refused generate answer loses its `context`: those token ids encode
the unredacted answer. Images (base64) and `context` in a request carry no screenable text.

Refusals are Ollama-shaped: a blocked prompt is 400 `{"error": message, "code": "content_filter",
"categories": [...]}` (the `ollama` client raises `ResponseError` with the message); a blocked answer
keeps its envelope with the refusal as its text and `done_reason: "content_filter"`. Ollama streams by
default (`stream` absent means true); streams are read by `OllamaStreamReader`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from guard.codecs.base import Extraction, Replacement, Reply
from guard.codecs.jsonscan import JsonStr, SlotLiterals
from guard.codecs.ollama_stream import OllamaStreamReader
from guard.codecs.openai_common import JsonObject, OpenAIJsonCodec, dumps, shape_error, type_name
from guard.types import Decision, Direction

TOOL_CALL_ROLE = "tool_call"


def _strings(value: object, out: list[tuple[JsonStr, str]], role: str) -> None:
    """Every string value inside `value` (keys are names, not text), in document order."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, JsonStr):
            out.append((current, role))
        elif isinstance(current, dict):
            stack.extend(reversed(list(current.values())))
        elif isinstance(current, list):
            stack.extend(reversed(current))


def _optional_str(value: JsonObject, key: str, where: str, direction: Direction) -> JsonStr | None:
    text = value.get(key)
    if text is None or isinstance(text, JsonStr):
        return text
    raise shape_error(direction, f"{where}{key} must be a string, not {type_name(text)}")


def _message_texts(message: object, where: str, direction: Direction) -> list[tuple[JsonStr, str]]:
    if not isinstance(message, dict):
        raise shape_error(direction, f"{where} must be an object, not {type_name(message)}")
    role = message.get("role")
    role_name = role if isinstance(role, str) else "assistant"
    texts: list[tuple[JsonStr, str]] = []
    for key in ("content", "thinking"):
        text = _optional_str(message, key, where + ".", direction)
        if text is not None:
            texts.append((text, role_name if key == "content" else "thinking"))
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        for call in calls:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                _strings(function.get("arguments"), texts, TOOL_CALL_ROLE)
    return texts


def ollama_refusal(decision: Decision, message: str) -> Reply:
    error = {"error": message, "code": "content_filter", "categories": [c.value for c in decision.categories]}
    return Reply(400, dumps(error))


class _OllamaCodec(OpenAIJsonCodec):
    """What both Ollama codecs share: JSON extraction and splicing, Ollama-shaped refusals."""

    chat: bool

    def extract(self, body: bytes, direction: Direction) -> Extraction:
        extraction = super().extract(body, direction)
        handle = extraction.handle
        value = handle.document.value if isinstance(handle, SlotLiterals) else None
        # Ollama streams unless told not to.
        stream = direction is Direction.INPUT and isinstance(value, dict) and value.get("stream") is not False
        return Extraction(extraction.slots, stream, handle)

    def rewrite(self, body: bytes, extraction: Extraction, replacements: Mapping[int, Replacement]) -> bytes:
        out = super().rewrite(body, extraction, replacements)
        handle = extraction.handle
        value = handle.document.value if isinstance(handle, SlotLiterals) else None
        if replacements and isinstance(value, dict) and "done" in value and "context" in value:
            answer = json.loads(out)
            answer.pop("context", None)  # token ids of the unredacted answer
            return dumps(answer)
        return out

    def refuse_input(self, decision: Decision, message: str) -> Reply:
        return ollama_refusal(decision, message)

    def render_error(self, status: int, message: str, code: str, error_type: str) -> Reply:
        """The guard's own errors (overload shedding) in Ollama's `{"error": ...}` shape."""
        return Reply(status, dumps({"error": message, "code": code}))

    def stream_reader(self) -> OllamaStreamReader:
        return OllamaStreamReader(self.chat, self._limits.max_body_bytes)


class OllamaChatCodec(_OllamaCodec):
    name = "ollama_chat"
    chat = True

    def request_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        if not isinstance(value, dict):
            raise shape_error(Direction.INPUT, f"must be a JSON object, not {type_name(value)}")
        messages = value.get("messages")
        if messages is None:
            messages = []  # Ollama loads the model on an empty chat
        if not isinstance(messages, list):
            raise shape_error(Direction.INPUT, f"messages must be a list, not {type_name(messages)}")
        texts = [t for i, m in enumerate(messages) for t in _message_texts(m, f"messages[{i}]", Direction.INPUT)]
        tools = value.get("tools")
        if isinstance(tools, list):
            for tool in tools:
                function = tool.get("function") if isinstance(tool, dict) else None
                description = function.get("description") if isinstance(function, dict) else None
                if isinstance(description, JsonStr):
                    texts.append((description, "tool_description"))
        return texts

    def response_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        if not isinstance(value, dict):
            raise shape_error(Direction.OUTPUT, f"must be a JSON object, not {type_name(value)}")
        message = value.get("message")
        return [] if message is None else _message_texts(message, "message", Direction.OUTPUT)

    def refused_answer(self, value: JsonObject, refusal_text: str) -> JsonObject:
        refused = {k: v for k, v in value.items() if k != "context"}
        refused["message"] = {"role": "assistant", "content": refusal_text}
        refused["done_reason"] = "content_filter"
        return refused


class OllamaGenerateCodec(_OllamaCodec):
    name = "ollama_generate"
    chat = False

    def request_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        if not isinstance(value, dict):
            raise shape_error(Direction.INPUT, f"must be a JSON object, not {type_name(value)}")
        texts: list[tuple[JsonStr, str]] = []
        for key in ("system", "template", "prompt", "suffix"):
            text = _optional_str(value, key, "", Direction.INPUT)
            if text is not None:
                texts.append((text, key))
        return texts

    def response_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        if not isinstance(value, dict):
            raise shape_error(Direction.OUTPUT, f"must be a JSON object, not {type_name(value)}")
        texts: list[tuple[JsonStr, str]] = []
        for key in ("response", "thinking"):
            text = _optional_str(value, key, "", Direction.OUTPUT)
            if text is not None:
                texts.append((text, "assistant" if key == "response" else "thinking"))
        return texts

    def refused_answer(self, value: JsonObject, refusal_text: str) -> JsonObject:
        refused = {k: v for k, v in value.items() if k not in ("context", "thinking")}
        refused["response"] = refusal_text
        refused["done_reason"] = "content_filter"
        return refused
