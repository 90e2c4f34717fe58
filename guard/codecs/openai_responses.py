"""Codec for the OpenAI Responses API (`POST /v1/responses`), JSON and SSE.

Request texts (slot role in brackets): `instructions` [system]; `input` when a string [user]; when a
list of items: a message's `content` string or its `input_text` / `output_text` / `text` parts' `text`
and `refusal` parts' `refusal` [the message's role], `function_call.arguments` and
`custom_tool_call.input` [tool_call], `function_call_output.output` and `custom_tool_call_output.output`,
a string or `input_text` parts [tool: untrusted content an injection detector must treat as such],
`reasoning` items' `summary[*].text` and `content[*].text` [reasoning]; `tools[*].description`
[tool_description]. Images, files, audio and item references carry no text to screen.

Answer texts: each `output[*]` message's `output_text` parts' `text` and `refusal` parts' `refusal`
[assistant], `function_call.arguments` and `custom_tool_call.input` [tool_call], `reasoning` items'
summaries and reasoning text [reasoning], and a top-level `output_text` where a server adds one.

A blocked prompt gets OpenAI's 400 error shape; a blocked answer keeps the response's identity and gets
`status: "incomplete"`, `incomplete_details: {"reason": "content_filter"}` and one message whose content
is a `refusal` part: shapes the official SDK parses. Streams are read by `ResponsesStreamReader`.
"""

from __future__ import annotations

from guard.codecs.json_walk import TextCollector
from guard.codecs.jsonscan import JsonStr
from guard.codecs.openai_common import JsonObject, OpenAIJsonCodec, shape_error, type_name
from guard.codecs.responses_stream import ResponsesStreamReader, refusal_item
from guard.types import Direction

TOOL_CALL_ROLE = "tool_call"
TOOL_RESULT_ROLE = "tool"
REASONING_ROLE = "reasoning"
_TEXT_PARTS = frozenset({"input_text", "output_text", "text", "summary_text", "reasoning_text"})


def _parts(c: TextCollector, content: object, where: str, role: str) -> None:
    """A message's or tool output's content: a string, or a list of typed parts."""
    if content is None:
        return
    if isinstance(content, JsonStr):
        c.text(content, where, role)
        return
    for j, raw in enumerate(c.items(content, where)):
        part = c.obj(raw, f"{where}[{j}]")
        kind = part.get("type")
        if kind in _TEXT_PARTS:
            c.text(part.get("text"), f"{where}[{j}].text", role, optional=False)
        elif kind == "refusal":
            c.text(part.get("refusal"), f"{where}[{j}].refusal", role)


def _reasoning(c: TextCollector, item: dict[str, object], where: str) -> None:
    for name in ("summary", "content"):
        value = item.get(name)
        if value is not None:
            _parts(c, value, f"{where}.{name}", REASONING_ROLE)


def _input_item(c: TextCollector, raw: object, where: str) -> None:
    item = c.obj(raw, where)
    kind = item.get("type")
    if kind is None or kind == "message":
        role = item.get("role")
        _parts(c, item.get("content"), f"{where}.content", role if isinstance(role, str) else "user")
    elif kind == "function_call":
        c.text(item.get("arguments"), f"{where}.arguments", TOOL_CALL_ROLE)
    elif kind == "custom_tool_call":
        c.text(item.get("input"), f"{where}.input", TOOL_CALL_ROLE)
    elif kind in ("function_call_output", "custom_tool_call_output"):
        _parts(c, item.get("output"), f"{where}.output", TOOL_RESULT_ROLE)
    elif kind == "reasoning":
        _reasoning(c, item, where)


def _output_item(c: TextCollector, raw: object, where: str) -> None:
    item = c.obj(raw, where)
    kind = item.get("type")
    if kind == "message":
        role = item.get("role")
        _parts(c, item.get("content"), f"{where}.content", role if isinstance(role, str) else "assistant")
    elif kind == "function_call":
        c.text(item.get("arguments"), f"{where}.arguments", TOOL_CALL_ROLE)
    elif kind == "custom_tool_call":
        c.text(item.get("input"), f"{where}.input", TOOL_CALL_ROLE)
    elif kind == "reasoning":
        _reasoning(c, item, where)


class OpenAIResponsesCodec(OpenAIJsonCodec):
    """Reads and rewrites Responses API requests and answers; refuses in the Responses shapes."""

    name = "openai_responses"

    def request_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        c = TextCollector(Direction.INPUT)
        if not isinstance(value, dict):
            raise shape_error(Direction.INPUT, f"must be a JSON object, not {type_name(value)}")
        instructions = value.get("instructions")
        if isinstance(instructions, list):
            for i, item in enumerate(instructions):
                _input_item(c, item, f"instructions[{i}]")
        else:
            c.text(instructions, "instructions", "system")
        given = value.get("input")
        if isinstance(given, list):
            for i, item in enumerate(given):
                _input_item(c, item, f"input[{i}]")
        else:
            c.text(given, "input", "user")
        tools = value.get("tools")
        if tools is not None:
            for i, tool in enumerate(c.items(tools, "tools")):
                c.text(c.obj(tool, f"tools[{i}]").get("description"), f"tools[{i}].description", "tool_description")
        return c.texts

    def response_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        c = TextCollector(Direction.OUTPUT)
        if not isinstance(value, dict):
            raise shape_error(Direction.OUTPUT, f"must be a JSON object, not {type_name(value)}")
        output = value.get("output")
        if output is not None:
            for i, item in enumerate(c.items(output, "output")):
                _output_item(c, item, f"output[{i}]")
        c.text(value.get("output_text"), "output_text", "assistant")
        return c.texts

    def refused_answer(self, value: JsonObject, refusal_text: str) -> JsonObject:
        refused = {
            **value,
            "status": "incomplete",
            "incomplete_details": {"reason": "content_filter"},
            "output": [refusal_item(refusal_text, "incomplete")],
        }
        refused.pop("output_text", None)
        return refused

    def stream_reader(self) -> ResponsesStreamReader:
        return ResponsesStreamReader(self._limits.max_body_bytes)
