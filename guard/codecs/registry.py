"""Builds a route's codec from its policy config: an explicit map from `kind` to factory."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from guard.codecs.anthropic_messages import AnthropicMessagesCodec
from guard.codecs.base import BodyLimits, Codec
from guard.codecs.jsonpath import JsonPathCodec
from guard.codecs.openai_chat import OpenAIChatCodec
from guard.codecs.ollama import OllamaChatCodec, OllamaGenerateCodec
from guard.codecs.openai_completions import OpenAICompletionsCodec
from guard.codecs.openai_responses import OpenAIResponsesCodec
from guard.codecs.openai_embeddings import OpenAIEmbeddingsCodec
from guard.codecs.text import TextCodec
from guard.errors import ConfigError

if TYPE_CHECKING:
    from guard.policy.model import CodecConfig

_FACTORIES: dict[str, Callable[[CodecConfig, BodyLimits], Codec]] = {
    "openai_chat": lambda config, limits: OpenAIChatCodec(limits),
    "openai_completions": lambda config, limits: OpenAICompletionsCodec(limits),
    "json": lambda config, limits: JsonPathCodec(limits, config.request_paths, config.response_paths),
    "text": lambda config, limits: TextCodec(limits),
    "openai_responses": lambda config, limits: OpenAIResponsesCodec(limits),
    "anthropic_messages": lambda config, limits: AnthropicMessagesCodec(limits),
    "openai_embeddings": lambda config, limits: OpenAIEmbeddingsCodec(limits, config.allow_token_input),
    "ollama_chat": lambda config, limits: OllamaChatCodec(limits),
    "ollama_generate": lambda config, limits: OllamaGenerateCodec(limits),
}

# Kinds whose answers carry no text (embedding vectors): relayed without being parsed or screened.
TEXTLESS_OUTPUT = frozenset({"openai_embeddings"})

CODEC_KINDS = tuple(_FACTORIES)


def build_codec(config: CodecConfig, limits: BodyLimits) -> Codec:
    """The codec for a route. Raises `ConfigError` for an unknown kind or an unreadable field path."""
    factory = _FACTORIES.get(config.kind)
    if factory is None:
        raise ConfigError(f"codec kind {config.kind!r} is not one of {sorted(_FACTORIES)}")
    return factory(config, limits)
