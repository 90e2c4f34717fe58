"""Header hygiene, request ids and the forwarded path: pure functions, checked directly."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from guard.errors import RequestError
from guard.proxy.asgi_io import forward_path, read_body
from guard.proxy.headers import (
    media_type,
    request_headers_for_upstream,
    request_id_from,
    response_headers_for_client,
)


def test_hop_by_hop_and_connection_named_headers_are_dropped() -> None:
    headers = [
        (b"Host", b"evil.example"), (b"Connection", b"keep-alive, X-Secret-Hop"), (b"x-secret-hop", b"1"),
        (b"Keep-Alive", b"timeout=5"), (b"TE", b"trailers"), (b"Transfer-Encoding", b"chunked"),
        (b"Upgrade", b"h2c"), (b"Proxy-Authorization", b"x"), (b"Trailer", b"x"), (b"Content-Length", b"12"),
        (b"Expect", b"100-continue"), (b"authorization", b"Bearer t"), (b"x-kept", b"1"),
    ]
    assert request_headers_for_upstream(headers) == [(b"authorization", b"Bearer t"), (b"x-kept", b"1")]
    kept = response_headers_for_client(headers)
    assert (b"Host", b"evil.example") in kept  # only the request's Host is the caller's to drop
    assert all(name.lower() not in (b"x-secret-hop", b"content-length", b"transfer-encoding") for name, _ in kept)


def test_request_id_is_echoed_only_when_valid() -> None:
    assert request_id_from([(b"x-request-id", b"abc-123.DEF:9")]) == "abc-123.DEF:9"
    for bad in (b"has space", b"", b"x" * 200, b"<script>", b"-leading"):
        generated = request_id_from([(b"x-request-id", bad)])
        assert uuid.UUID(hex=generated).version == 4
    assert uuid.UUID(hex=request_id_from([])).version == 4


def test_media_type() -> None:
    assert media_type([(b"content-type", b"Application/JSON; charset=utf-8")]) == "application/json"
    assert media_type([]) == ""


@pytest.mark.parametrize(
    ("raw", "path", "expected"),
    [
        (b"/v1/chat/completions", "/v1/chat/completions", ("/v1/chat/completions", "/v1/chat/completions")),
        (b"/v1/chat%2Fcompletions", "/v1/chat/completions", ("/v1/chat%2Fcompletions", "/v1/chat/completions")),
        (b"http://other.example:9/v1/x", "http://other.example:9/v1/x", ("/v1/x", "/v1/x")),
        (b"//other.example/x", "//other.example/x", ("//other.example/x", "//other.example/x")),
        (None, "/a b", ("/a%20b", "/a b")),
    ],
)
def test_forward_path_keeps_only_the_path(raw: bytes | None, path: str, expected: tuple[str, str]) -> None:
    assert forward_path({"raw_path": raw, "path": path}) == expected


def _receiver(parts: list[bytes]) -> object:
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]

    async def receive() -> dict[str, object]:
        return messages.pop(0)

    return receive


def test_read_body_enforces_the_limit_while_reading() -> None:
    assert asyncio.run(read_body(_receiver([b"ab", b"cd"]), 4, None)) == b"abcd"  # type: ignore[arg-type]
    with pytest.raises(RequestError) as raised:
        asyncio.run(read_body(_receiver([b"abc", b"de", b"never read"]), 4, None))  # type: ignore[arg-type]
    assert raised.value.status == 413
    with pytest.raises(RequestError) as declared:
        asyncio.run(read_body(_receiver([]), 4, b"5"))  # type: ignore[arg-type]
    assert declared.value.status == 413
    with pytest.raises(RequestError) as junk:
        asyncio.run(read_body(_receiver([]), 4, b"five"))  # type: ignore[arg-type]
    assert junk.value.status == 400
