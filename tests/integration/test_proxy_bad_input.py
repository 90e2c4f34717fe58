"""Bad input gets a clear, API-shaped error with the right status, is counted by reason, never reaches the
upstream, and leaves the proxy serving. One guard for the module: each case is followed by a good request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.integration.proxy_harness import GuardThread, chat_body, marker_policy

CHAT = "/v1/chat/completions"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GuardThread, FakeUpstream]]:
    directory: Path = tmp_path_factory.mktemp("bad_input")
    policy = marker_policy(directory, limits={"max_body_bytes": 4096, "max_json_depth": 8, "max_texts": 3})
    with FakeUpstream() as upstream, GuardThread(upstream.url, policy) as guard:
        yield guard, upstream


def _many(n: int) -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "user", "content": f"m{i}"} for i in range(n)]}


def _chunks() -> Iterator[bytes]:
    for _ in range(10):
        yield b"x" * 1000


CASES = [
    ("malformed_json", dict(content=b'{"model": "m", "messages": [', headers=JSON), 400, "not valid JSON", "malformed_json"),
    ("wrong_content_type", dict(content=b"{}", headers={"content-type": "text/plain"}), 415, "application/json",
     "unsupported_media_type"),
    ("body_over_limit", dict(content=b"{" + b" " * 5000 + b"}", headers=JSON), 413, "4096 bytes", "body_too_large"),
    ("chunked_body_over_limit", dict(content=_chunks, headers=JSON), 413, "4096 bytes", "body_too_large"),
    ("invalid_utf8", dict(content=b'{"model": "m\xff"}', headers=JSON), 400, "UTF-8", "invalid_utf8"),
    ("too_deep", dict(content=b'{"a":' * 20 + b"1" + b"}" * 20, headers=JSON), 400, "deeper than 8", "too_deep"),
    ("wrong_shape", dict(json={"model": "m", "messages": "hi"}), 400, "messages", "wrong_shape"),
    ("too_many_texts", dict(json=_many(5)), 413, "more than 3 texts", "body_too_large"),
]


@pytest.mark.parametrize(("name", "request_kwargs", "status", "message_part", "reason"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_and_the_proxy_keeps_serving(
    setup: tuple[GuardThread, FakeUpstream],
    name: str,
    request_kwargs: dict[str, object],
    status: int,
    message_part: str,
    reason: str,
) -> None:
    guard, upstream = setup
    before_forwarded = len(upstream.received)
    before_rejected = guard.metric("guard_rejected_requests_total", reason=reason)
    kwargs = dict(request_kwargs)
    if callable(kwargs.get("content")):
        kwargs["content"] = kwargs["content"]()  # type: ignore[operator]
    response = httpx.post(guard.url + CHAT, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message_part in error["message"]
    assert error["type"] == "invalid_request_error"
    assert response.headers["x-guard-request-id"]
    assert len(upstream.received) == before_forwarded
    assert guard.metric("guard_rejected_requests_total", reason=reason) == before_rejected + 1
    # ... and the proxy still serves.
    good = httpx.post(guard.url + CHAT, json=chat_body("fine"))
    assert good.status_code == 200
    assert good.headers["x-guard-decision"] == "allow"
