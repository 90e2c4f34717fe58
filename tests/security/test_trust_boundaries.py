"""Trust boundaries of the proxy port, against a real `guard serve` from real sockets.

- The tier header is honoured only from the TCP peers the policy trusts, never from the caller: a caller on
  an untrusted address can neither lower nor raise its tier, and forwarding headers (X-Forwarded-For,
  Forwarded, X-Real-IP) do not make it trusted.
- The guard forwards only to its configured upstream, whatever the Host header or an absolute-form request
  target names.
- A path that reaches a screened route's handler upstream (dot segments, doubled slashes, percent-encoding)
  is screened or refused, never forwarded unscreened.
"""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.fakes.fault_policy import CHAT, MARKER, chat, fault_policy
from tests.fakes.faults import Behaviour, FaultServer, Mode
from tests.fakes.guard_process import GuardProcess
from tests.fakes.guard_process import StartGuard

SPOOFS = [
    {},
    {"x-forwarded-for": "10.20.0.5"},
    {"forwarded": "for=10.20.0.5;proto=https"},
    {"x-real-ip": "10.20.0.5"},
    {"x-forwarded-for": "10.20.0.5", "x-forwarded-proto": "https", "x-forwarded-host": "trusted"},
]


def _send(guard: GuardProcess, tier: str, extra: dict[str, str]) -> httpx.Response:
    headers = {"x-guard-tier": tier, **extra}
    return httpx.post(guard.url + CHAT, json=chat(f"my code is {MARKER}"), headers=headers, timeout=10)


def _reached(upstream: FaultServer) -> list[bytes]:
    return [r.body for r in upstream.recorded()]


def test_an_untrusted_caller_cannot_lower_its_tier(start_guard: StartGuard) -> None:
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        policy = fault_policy(default_tier="high", trusted_sources=["10.20.0.0/16"])
        guard = start_guard(upstream.url, policy)
        for extra in SPOOFS:
            response = _send(guard, "limited", extra)
            assert response.status_code == 400, (extra, response.text)
            assert response.headers["x-guard-decision"] == "block"
        assert _reached(upstream) == []


def test_an_untrusted_caller_cannot_raise_its_tier(start_guard: StartGuard) -> None:
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        policy = fault_policy(default_tier="limited", trusted_sources=["10.20.0.0/16"])
        guard = start_guard(upstream.url, policy)
        for extra in SPOOFS:
            response = _send(guard, "high", extra)
            assert response.status_code == 200, (extra, response.text)
            assert response.headers["x-guard-decision"] == "redact"
        assert len(_reached(upstream)) == len(SPOOFS)
        assert all(MARKER.encode() not in body for body in _reached(upstream))


def test_without_a_tier_header_in_the_policy_the_header_means_nothing(start_guard: StartGuard) -> None:
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        guard = start_guard(upstream.url, fault_policy(default_tier="high"))
        response = _send(guard, "limited", {})
        assert response.status_code == 400
        assert _reached(upstream) == []


def test_the_trusted_source_is_honoured(start_guard: StartGuard) -> None:
    """The control: from a trusted peer (loopback here) the same header does select the tier, so the two
    tests above fail if the header handling changes rather than passing because it is ignored everywhere."""
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        policy = fault_policy(default_tier="high", trusted_sources=["127.0.0.1/32"])
        guard = start_guard(upstream.url, policy)
        assert _send(guard, "limited", {}).status_code == 200
        assert _send(guard, "high", {}).status_code == 400
        assert _send(guard, "no-such-tier", {}).status_code == 400  # unknown value: the default tier
        assert len(_reached(upstream)) == 1


def _raw_request(guard: GuardProcess, target: bytes, host: bytes, body: bytes) -> bytes:
    request = (
        b"POST " + target + b" HTTP/1.1\r\nhost: " + host + b"\r\ncontent-type: application/json\r\n"
        b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with socket.create_connection(("127.0.0.1", guard.port), timeout=10) as sock:
        sock.sendall(request)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def test_only_the_configured_upstream_is_ever_contacted(start_guard: StartGuard) -> None:
    with FaultServer(Behaviour(Mode.OK)) as upstream, FaultServer(Behaviour(Mode.OK)) as other:
        guard = start_guard(upstream.url, fault_policy())
        evil = f"127.0.0.1:{other.port}".encode()
        body = httpx.Request("POST", "http://x", json=chat("hello")).read()
        targets = [
            CHAT.encode(),
            b"http://" + evil + CHAT.encode(),
            b"http://" + evil + b"/unscreened",
            b"//" + evil + CHAT.encode(),
            b"/@" + evil + CHAT.encode(),
        ]
        for target in targets:
            for host in (evil, b"attacker.example", b"127.0.0.1:" + str(upstream.port).encode()):
                answer = _raw_request(guard, target, host, body)
                assert answer.startswith(b"HTTP/1.1 "), answer[:100]
        assert other.recorded() == []
        assert len(upstream.recorded()) >= 2
        for recorded in upstream.recorded():
            assert recorded.header("host") == f"127.0.0.1:{upstream.port}"


@pytest.mark.parametrize(
    "path",
    [
        "/v1/chat/completions/",
        "/v1/chat/%63ompletions",
        "//v1/chat/completions",
        "/v1//chat/completions",
        "/v1/chat/./completions",
        "/v1/x/../chat/completions",
        "/v1/chat/completions/.",
        "/v1/chat/%2e/completions",
        "/v1/chat/completions%2f",
    ],
)
def test_path_variants_of_a_screened_route_are_screened_or_refused(start_guard: StartGuard, path: str) -> None:
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        guard = start_guard(upstream.url, fault_policy(default_tier="high"))
        body = httpx.Request("POST", "http://x", json=chat(f"my code is {MARKER}")).read()
        answer = _raw_request(guard, path.encode(), b"x", body)
        status = int(answer.split(b" ", 2)[1])
        assert status in (400, 404), answer[:300]
        assert all(MARKER.encode() not in r.body for r in upstream.recorded()), path
