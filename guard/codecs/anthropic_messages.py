"""Codec for Anthropic Messages (`POST /v1/messages`, also served by vLLM and LiteLLM), JSON and SSE.

Request texts (slot role in brackets): `system`, a string or `text` blocks [system];
`messages[*].content`, a string or blocks: `text` [the message's role], every string value inside a
`tool_use` block's `input` [tool_call], `tool_result` content, a string or `text` blocks [tool:
untrusted content an injection detector must treat as such], `thinking` blocks' `thinking`
[reasoning], `document` blocks with a plain-text source (`source.data`) [document];
`tools[*].description` [tool_description]. Images, PDFs (base64) and redacted thinking carry no text
the guard can screen.

Answer texts: `content[*]` blocks: `text` [assistant], every string value of `tool_use.input`
[tool_call], `thinking` [reasoning]. Redacting a thinking block invalidates its `signature`, which the
API checks when the block is sent back; that is the price of not releasing what a detector flagged.

A blocked prompt gets Anthropic's error shape (HTTP 400, `{"type": "error", "error": {"type":
"invalid_request_error", "message": ...}}`), a blocked answer one `text` block with the refusal and
`stop_reason: "refusal"`. Streams are read by `AnthropicStreamReader`.
"""

from __future__ import annotations

from guard.codecs.anthropic_stream import AnthropicStreamReader
from guard.codecs.base import Reply
from guard.codecs.json_walk import TextCollector
from guard.codecs.jsonscan import JsonStr
from guard.codecs.openai_common import JsonObject, OpenAIJsonCodec, dumps
from guard.types import Decision, Direction

TOOL_CALL_ROLE = "tool_call"
TOOL_RESULT_ROLE = "tool"
REFUSAL_STOP_REASON = "refusal"


def anthropic_error(status: int, kind: str, message: str, **extra: object) -> Reply:
    """An answer in Anthropic's error shape."""
    return Reply(status, dumps({"type": "error", "error": {"type": kind, "message": message, **extra}}))


def _blocks(c: TextCollector, content: object, where: str, role: str) -> None:
    """`content` of a message, a tool result or `system`: a string or a list of blocks."""
    if content is None:
        return
    if isinstance(content, JsonStr):
        c.text(content, where, role)
        return
    for j, raw in enumerate(c.items(content, where)):
        block = c.obj(raw, f"{where}[{j}]")
        kind = block.get("type")
        at = f"{where}[{j}]"
        if kind == "text":
            c.text(block.get("text"), f"{at}.text", role, optional=False)
        elif kind == "tool_use":
            c.strings_in(block.get("input"), TOOL_CALL_ROLE)
        elif kind == "tool_result":
            _blocks(c, block.get("content"), f"{at}.content", TOOL_RESULT_ROLE)
        elif kind == "thinking":
            c.text(block.get("thinking"), f"{at}.thinking", "reasoning")
        elif kind == "document":
            source = block.get("source")
            if isinstance(source, dict) and source.get("type") == "text":
                c.text(source.get("data"), f"{at}.source.data", "document")
            elif isinstance(source, dict) and source.get("type") == "content":
                _blocks(c, source.get("content"), f"{at}.source.content", "document")


class AnthropicMessagesCodec(OpenAIJsonCodec):
    """Reads and rewrites Messages API requests and answers; refuses in Anthropic's shapes."""

    name = "anthropic_messages"

    def request_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        c = TextCollector(Direction.INPUT)
        body = c.obj(value, "the body")
        _blocks(c, body.get("system"), "system", "system")
        messages = body.get("messages")
        if messages is None:
            raise c.error("messages is required")
        for i, raw in enumerate(c.items(messages, "messages")):
            message = c.obj(raw, f"messages[{i}]")
            role = message.get("role")
            if not isinstance(role, str):
                raise c.error(f"messages[{i}].role is required and must be a string")
            _blocks(c, message.get("content"), f"messages[{i}].content", role)
        tools = body.get("tools")
        if tools is not None:
            for i, tool in enumerate(c.items(tools, "tools")):
                c.text(c.obj(tool, f"tools[{i}]").get("description"), f"tools[{i}].description", "tool_description")
        return c.texts

    def response_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        c = TextCollector(Direction.OUTPUT)
        body = c.obj(value, "the body")
        _blocks(c, body.get("content"), "content", "assistant")
        return c.texts

    def refused_answer(self, value: JsonObject, refusal_text: str) -> JsonObject:
        return {
            **value,
            "content": [{"type": "text", "text": refusal_text}],
            "stop_reason": REFUSAL_STOP_REASON,
            "stop_sequence": None,
        }

    def refuse_input(self, decision: Decision, message: str) -> Reply:
        categories = [category.value for category in decision.categories]
        return anthropic_error(400, "invalid_request_error", message, code="content_filter", categories=categories)

    def render_error(self, status: int, message: str, code: str, error_type: str) -> Reply:
        """The guard's own errors (overload shedding) in Anthropic's shape and error types, so the SDK raises
        its RateLimitError (429) or InternalServerError (503) and retries as it does for the API's own."""
        kind = {429: "rate_limit_error", 503: "overloaded_error"}.get(status, "api_error")
        return anthropic_error(status, kind, message, code=code)

    def stream_reader(self) -> AnthropicStreamReader:
        return AnthropicStreamReader(self._limits.max_body_bytes)
