"""Codec for OpenAI legacy completions (`POST /v1/completions`), JSON and SSE.

Request texts: `prompt` (a string or a list of strings) and `suffix`. Token-array prompts are refused:
they cannot be screened without the model's tokenizer, and letting them through would be a bypass.
Response texts: `choices[*].text`; streamed, each chunk's `choices[*].text` is a delta. A redacted
choice's `logprobs` become null (their tokens spell the original text), as in chat.
"""

from __future__ import annotations

from collections.abc import Mapping

from guard.codecs.base import Extraction, Replacement, TextSlot
from guard.codecs.jsonscan import JsonStr, check_slot_count, parse_json
from guard.codecs.jsonsplice import rewrite_slots
from guard.codecs.openai_chat import ChatLiterals, logprobs_splices
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

    def extract(self, body: bytes, direction: Direction) -> Extraction:
        if direction is Direction.INPUT:
            return super().extract(body, direction)
        document = parse_json(body, self._limits.max_json_depth, direction)
        texts = self.response_texts(document.value)  # checks the shape, naming the field at fault
        owner = {id(choice.get("text")): i for i, choice in enumerate(response_choices(document.value))}
        found = [(text, owner.get(id(text))) for text, _ in texts]
        check_slot_count(len(found), self._limits.max_texts, direction)
        slots = tuple(TextSlot(i, str(text), "assistant") for i, (text, _) in enumerate(found))
        return Extraction(slots, False, ChatLiterals(document, tuple(t for t, _ in found), tuple(c for _, c in found)))

    def rewrite(self, body: bytes, extraction: Extraction, replacements: Mapping[int, Replacement]) -> bytes:
        return rewrite_slots(body, extraction, replacements, logprobs_splices(extraction, replacements))

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
