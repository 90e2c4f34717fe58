"""Codec for OpenAI legacy completions (`POST /v1/completions`), JSON and SSE.

Request texts: `prompt` (a string or a list of strings) and `suffix`. Token-array prompts are refused:
they cannot be screened without the model's tokenizer, and letting them through would be a bypass.
Response texts: `choices[*].text`; streamed, each chunk's `choices[*].text` is a delta.
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

_PROMPT_SHAPE = "must be a string or a list of strings (token arrays cannot be screened)"


class OpenAICompletionsCodec(OpenAIJsonCodec):
    """Reads and rewrites completion requests and answers; refuses in OpenAI's shapes."""

    name = "openai_completions"

    def request_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        if not isinstance(value, dict):
            raise shape_error(Direction.INPUT, f"must be a JSON object, not {type_name(value)}")
        prompt = value.get("prompt")
        texts: list[tuple[JsonStr, str]] = []
        if prompt is None:
            raise shape_error(Direction.INPUT, "prompt is required")
        if isinstance(prompt, JsonStr):
            texts.append((prompt, "prompt"))
        elif isinstance(prompt, list):
            for i, item in enumerate(prompt):
                if not isinstance(item, JsonStr):
                    raise shape_error(Direction.INPUT, f"prompt[{i}] {_PROMPT_SHAPE}, not {type_name(item)}")
                texts.append((item, "prompt"))
        else:
            raise shape_error(Direction.INPUT, f"prompt {_PROMPT_SHAPE}, not {type_name(prompt)}")
        suffix = value.get("suffix")
        if isinstance(suffix, JsonStr):
            texts.append((suffix, "suffix"))
        elif suffix is not None:
            raise shape_error(Direction.INPUT, f"suffix must be a string or null, not {type_name(suffix)}")
        return texts

    def response_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        texts: list[tuple[JsonStr, str]] = []
        for i, choice in enumerate(response_choices(value)):
            text = choice.get("text")
            if text is None:
                continue
            if not isinstance(text, JsonStr):
                raise shape_error(Direction.OUTPUT, f"choices[{i}].text must be a string, not {type_name(text)}")
            texts.append((text, "assistant"))
        return texts

    def refused_answer(self, value: JsonObject, refusal_text: str) -> JsonObject:
        choices = [refused_choice(choice, {"text": refusal_text}) for choice in response_choices(value)]
        return {**value, "choices": choices}

    def stream_reader(self) -> CompletionsStreamReader:
        return CompletionsStreamReader(self._limits.max_body_bytes)


class CompletionsStreamReader(OpenAIStreamReader):
    """`text_completion` chunk events: the text is `choices[*].text` (channel `text`)."""

    object_name = "text_completion"
    content_channel = "text"

    def texts_of(self, choice: JsonObject) -> list[tuple[str, str]]:
        text = choice.get("text")
        return [("text", text)] if isinstance(text, str) else []

    def without_text(self, choice: JsonObject) -> JsonObject:
        stripped = {**choice, "text": ""}
        if "logprobs" in stripped:
            stripped["logprobs"] = None
        return stripped

    def is_final(self, choice: JsonObject) -> bool:
        return choice.get("finish_reason") is not None

    def has_preamble(self, choice: JsonObject) -> bool:
        return False

    def text_choice(self, index: int, channel: str, text: str, finish_reason: str | None) -> JsonObject:
        return {"text": text, "index": index, "logprobs": None, "finish_reason": finish_reason}
