"""guard/codecs/registry.py: every policy codec kind builds, bad paths stop startup."""

from __future__ import annotations

from typing import get_args

import pytest

from guard.codecs.base import BodyLimits
from guard.codecs.registry import CODEC_KINDS, build_codec
from guard.errors import ConfigError
from guard.policy.model import CodecConfig
from guard.types import Direction

LIMITS = BodyLimits(max_body_bytes=1 << 20, max_json_depth=8)


def test_every_policy_kind_has_a_codec() -> None:
    assert set(CODEC_KINDS) == set(get_args(CodecConfig.model_fields["kind"].annotation))


@pytest.mark.parametrize(
    ("config", "body", "texts"),
    [
        (CodecConfig(kind="openai_chat"), b'{"messages": [{"role": "user", "content": "hi"}]}', ["hi"]),
        (CodecConfig(kind="openai_completions"), b'{"prompt": "hi"}', ["hi"]),
        (CodecConfig(kind="json", request_paths=["$.q"]), b'{"q": "hi"}', ["hi"]),
        (CodecConfig(kind="text"), b"hi", ["hi"]),
    ],
)
def test_build(config: CodecConfig, body: bytes, texts: list[str]) -> None:
    codec = build_codec(config, LIMITS)
    assert codec.name == config.kind
    assert [s.text for s in codec.extract(body, Direction.INPUT).slots] == texts


def test_bad_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not understood at character 2"):
        build_codec(CodecConfig(kind="json", request_paths=["$.["]), LIMITS)
