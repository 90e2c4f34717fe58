"""Codec for OpenAI embeddings (`POST /v1/embeddings`, Azure `.../deployments/{d}/embeddings`), JSON only.

Request texts: `input`, a string or a list of strings (slot role "input"). Token-id input (a list of
integers, or a list of such lists) cannot be screened without the model's tokenizer: it is refused with 400
`token_input` unless the route's codec says `allow_token_input: true`, in which case those ids go through
unscreened and only the strings are screened. An answer is a list of vectors and carries no text: the
pipeline relays it without parsing (`TEXTLESS_OUTPUT` in the registry), and `response_texts` finds none.
"""

from __future__ import annotations

from guard.codecs.base import BodyLimits, StreamReader
from guard.codecs.jsonscan import JsonStr
from guard.codecs.openai_common import JsonObject, OpenAIJsonCodec, shape_error, type_name
from guard.errors import RequestError
from guard.types import Direction

_TOKENS = (
    "input holds token ids, which the guard cannot screen; send the text itself (a string or a list of "
    "strings), or ask the operator to allow token input on this route"
)
_SHAPE = "must be a string, a list of strings, or token ids"


def _is_token_ids(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_token_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_token_ids(v) for v in value)


class OpenAIEmbeddingsCodec(OpenAIJsonCodec):
    """Reads and rewrites embedding requests; refuses in OpenAI's shape."""

    name = "openai_embeddings"

    def __init__(self, limits: BodyLimits, allow_token_input: bool = False) -> None:
        super().__init__(limits)
        self._allow_tokens = allow_token_input

    def _tokens(self) -> None:
        if not self._allow_tokens:
            raise RequestError(400, _TOKENS, "token_input")

    def request_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        if not isinstance(value, dict):
            raise shape_error(Direction.INPUT, f"must be a JSON object, not {type_name(value)}")
        data = value.get("input")
        if data is None:
            raise shape_error(Direction.INPUT, "input is required")
        if isinstance(data, JsonStr):
            return [(data, "input")]
        if not isinstance(data, list):
            raise shape_error(Direction.INPUT, f"input {_SHAPE}, not {type_name(data)}")
        if _is_token_list(data):
            self._tokens()
            return []
        texts: list[tuple[JsonStr, str]] = []
        for i, item in enumerate(data):
            if isinstance(item, JsonStr):
                texts.append((item, "input"))
            elif _is_token_list(item):
                self._tokens()
            else:
                raise shape_error(Direction.INPUT, f"input[{i}] {_SHAPE}, not {type_name(item)}")
        return texts

    def response_texts(self, value: object) -> list[tuple[JsonStr, str]]:
        if not isinstance(value, dict):
            raise shape_error(Direction.OUTPUT, f"must be a JSON object, not {type_name(value)}")
        return []  # vectors only

    def refused_answer(self, value: JsonObject, refusal_text: str) -> JsonObject:
        return {**value, "data": []}  # an answer without text has nothing to refuse but its vectors

    def stream_reader(self) -> StreamReader | None:
        return None
