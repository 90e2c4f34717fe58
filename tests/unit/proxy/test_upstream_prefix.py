"""guard/proxy/upstream.py::join_prefix: an upstream URL's path prefix is never doubled (issue 9)."""

from __future__ import annotations

import pytest

from guard.proxy.upstream import join_prefix


@pytest.mark.parametrize(
    ("prefix", "path", "expected"),
    [
        ("", "/v1/chat/completions", "/v1/chat/completions"),
        ("/v1", "/v1/chat/completions", "/v1/chat/completions"),
        ("/v1", "/v1", "/v1"),
        ("/v1", "/chat/completions", "/v1/chat/completions"),
        ("/v1", "/v10/models", "/v1/v10/models"),  # whole segments only
        ("/v1", "/api/chat", "/v1/api/chat"),
        ("/openai/v1", "/openai/v1/embeddings", "/openai/v1/embeddings"),
        ("/openai/v1", "/v1/embeddings", "/openai/v1/v1/embeddings"),
    ],
)
def test_join_prefix(prefix: str, path: str, expected: str) -> None:
    assert join_prefix(prefix, path) == expected
