"""`guard serve` as a plain reverse proxy: every method, path and query reaches the configured upstream
(never another host), hop-by-hop headers are dropped both ways, upstream errors pass through faithfully,
and an unreachable or slow upstream becomes a fixed 502/504. Client → guard → fake upstream over sockets."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.upstream import FakeUpstream, fake_upstream  # noqa: F401 - fixture
from tests.fakes.guard_process import free_port
from tests.integration.proxy_harness import PASSTHROUGH_POLICY, GuardThread, chat_body


@pytest.fixture
def guard(fake_upstream: FakeUpstream) -> Iterator[GuardThread]:  # noqa: F811
    with GuardThread(fake_upstream.url, PASSTHROUGH_POLICY) as running:
        yield running


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_every_method_path_and_query_is_forwarded(guard: GuardThread, fake_upstream: FakeUpstream, method: str) -> None:  # noqa: F811
    response = httpx.request(method, guard.url + "/some/deep/path%20x?a=1&b=two%2F", content=b"payload")
    assert response.status_code == 200
    seen = fake_upstream.received[-1]
    assert (seen.method, seen.path, seen.query) == (method, "/some/deep/path x", "a=1&b=two%2F")
    assert seen.body == b"payload"
    assert seen.headers["content-length"] == "7"


def _raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < 12:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_host_header_and_absolute_target_never_choose_the_host(guard: GuardThread, fake_upstream: FakeUpstream) -> None:  # noqa: F811
    # A listener that must never be reached: the guard only ever talks to the configured upstream.
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen()
    trap_port = trap.getsockname()[1]
    trap.settimeout(0.2)
    try:
        for target in (f"http://127.0.0.1:{trap_port}/stolen?q=1".encode(), b"/stolen?q=1"):
            raw = _raw_request(
                guard.bound.proxy_port,
                b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % trap_port,
            )
            assert raw.startswith(b"HTTP/1.1 200")
            seen = fake_upstream.received[-1]
            assert (seen.path, seen.query) == ("/stolen", "q=1")
            assert seen.headers["host"] == f"127.0.0.1:{fake_upstream.port}"
        with pytest.raises(TimeoutError):
            trap.accept()
    finally:
        trap.close()


def test_hop_by_hop_headers_are_dropped_both_ways(guard: GuardThread, fake_upstream: FakeUpstream) -> None:  # noqa: F811
    fake_upstream.script(
        reply="ok",
        extra_headers=[("x-upstream-private", "1"), ("connection", "x-upstream-private"), ("x-kept", "yes"),
                       ("keep-alive", "timeout=5"), ("proxy-authenticate", "Basic")],
    )
    response = httpx.post(
        guard.url + "/v1/chat/completions",
        json=chat_body("hello"),
        headers={"connection": "keep-alive, x-client-private", "x-client-private": "1", "keep-alive": "timeout=9",
                 "proxy-authorization": "Basic abc", "te": "trailers", "x-client-kept": "yes",
                 "authorization": "Bearer t"},
    )
    assert response.status_code == 200
    seen = fake_upstream.received[-1].headers
    for dropped in ("x-client-private", "keep-alive", "proxy-authorization", "te"):
        assert dropped not in seen
    assert seen["x-client-kept"] == "yes"
    assert seen["authorization"] == "Bearer t"
    for dropped in ("x-upstream-private", "keep-alive", "proxy-authenticate"):
        assert dropped not in response.headers
    assert response.headers["x-kept"] == "yes"
    assert response.headers["content-length"] == str(len(response.content))


def test_guard_headers_and_request_id(guard: GuardThread) -> None:
    response = httpx.post(guard.url + "/v1/chat/completions", json=chat_body("hello"))
    assert response.headers["x-guard-decision"] == "allow"
    generated = response.headers["x-guard-request-id"]
    assert uuid.UUID(hex=generated).version == 4
    echoed = httpx.post(guard.url + "/v1/chat/completions", json=chat_body("hi"), headers={"x-request-id": "trace-42.a"})
    assert echoed.headers["x-guard-request-id"] == "trace-42.a"
    invalid = httpx.post(guard.url + "/v1/chat/completions", json=chat_body("hi"), headers={"x-request-id": "bad id <x>"})
    assert invalid.headers["x-guard-request-id"] != "bad id <x>"
    assert len(invalid.headers["x-guard-request-id"]) == 32


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 503])
def test_upstream_errors_pass_through_faithfully(guard: GuardThread, fake_upstream: FakeUpstream, status: int) -> None:  # noqa: F811
    fake_upstream.script(status=status)
    response = httpx.post(guard.url + "/v1/chat/completions", json=chat_body("hello"))
    assert response.status_code == status
    assert response.json()["error"]["message"] == f"fake upstream error {status}"


def test_unreachable_upstream_is_502_with_fixed_body() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with GuardThread(dead, PASSTHROUGH_POLICY) as guard:
        response = httpx.post(guard.url + "/v1/chat/completions", json=chat_body("hello"))
        assert response.status_code == 502
        error = response.json()["error"]
        assert error["code"] == "upstream_unavailable"
        assert error["message"] == "The model endpoint could not be reached."
        assert guard.metric("guard_upstream_request_duration_seconds_count", status_class="connect_error") == 1
        # Still serving afterwards.
        assert httpx.get(guard.admin_url + "/healthz").status_code == 200


def test_slow_upstream_is_504_with_fixed_body(fake_upstream: FakeUpstream) -> None:  # noqa: F811
    fake_upstream.script(delay_s=3.0)
    with GuardThread(fake_upstream.url, PASSTHROUGH_POLICY, upstream_read_timeout_s=0.3) as guard:
        response = httpx.post(guard.url + "/v1/chat/completions", json=chat_body("hello"), timeout=10)
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "upstream_timeout"
        assert guard.metric("guard_upstream_request_duration_seconds_count", status_class="timeout") == 1


def test_admin_endpoints(guard: GuardThread) -> None:
    assert httpx.get(guard.admin_url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(guard.admin_url + "/readyz").status_code == 200
    httpx.post(guard.url + "/v1/chat/completions", json=chat_body("hello"))
    assert guard.metric("guard_requests_total", direction="input", route="chat", decision="allow") == 1
    assert guard.metric("guard_requests_total", direction="output", route="chat", decision="allow") == 1
    assert guard.metric("guard_upstream_request_duration_seconds_count", status_class="2xx") == 1
    assert guard.metric("guard_overhead_seconds_count", direction="input") == 1
    assert guard.metric("guard_ready") == 1
    # The proxy port does not serve the admin endpoints: those paths go to the upstream.
    assert httpx.get(guard.url + "/metrics").json()["path"] == "/metrics"


def test_large_body_is_forwarded_whole(guard: GuardThread, fake_upstream: FakeUpstream) -> None:  # noqa: F811
    body = bytes(range(256)) * 800  # 200 KiB: past the socket buffer, so the bounded-send path is taken
    response = httpx.put(guard.url + "/files/blob", content=body)
    assert response.status_code == 200
    assert fake_upstream.received[-1].body == body
    assert fake_upstream.received[-1].headers["content-length"] == str(len(body))
