"""Spellings of a screened route that upstreams read as that route (issue 15): each is screened, or refused
with 400, and what is forwarded is the canonical path that was matched, never the caller's spelling.

Before: `/V1/CHAT/COMPLETIONS`, `/v1/chat/completions;x` and a trailing `%20` missed the route and went to
the upstream unscreened (the old `unknown_routes: pass` default); dot segments were matched resolved but
forwarded as sent. Against a real `guard serve` and an upstream that records the raw request target.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.fault_policy import CHAT, MARKER, chat, fault_policy, write_policy
from tests.fakes.faults import Behaviour, FaultServer, Mode
from tests.fakes.guard_process import GuardProcess

VARIANTS = [
    "/V1/CHAT/COMPLETIONS",
    "/v1/Chat/Completions",
    "/v1/chat/completions;x",
    "/v1;a=b/chat/completions",
    "/v1/chat/completions%20",
    "/v1/chat/completions%09",
    "/v1/chat/completions%00",
    "/v1/./chat/../chat/completions",
    "/v1/%2e/chat/%2E%2E/chat/completions",
    "/v1/x/%2e%2e/chat/completions",
    "/v1/chat%2Fcompletions",
    "/v1//chat/completions/",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GuardProcess, FaultServer]]:
    workdir = tmp_path_factory.mktemp("route-variants")
    # Tier `limited` redacts the marker and forwards: the forwarded target is visible upstream.
    policy = write_policy(workdir / "policy.yaml", fault_policy(default_tier="limited"))
    with FaultServer(Behaviour(Mode.OK)) as upstream, GuardProcess(upstream.url, policy, workdir) as guard:
        yield guard, upstream


def _post(guard: GuardProcess, target: str, body: bytes) -> int:
    request = (
        b"POST " + target.encode() + b" HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with socket.create_connection(("127.0.0.1", guard.port), timeout=10) as sock:
        sock.sendall(request)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return int(out.split(b" ", 2)[1])


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_route_variant_is_screened_at_its_canonical_path_or_refused(
    stack: tuple[GuardProcess, FaultServer], variant: str
) -> None:
    guard, upstream = stack
    before = len(upstream.recorded())
    body = httpx.Request("POST", "http://x", json=chat(f"my code is {MARKER}")).read()
    status = _post(guard, variant, body)
    reached = upstream.recorded()[before:]
    assert all(MARKER.encode() not in r.body for r in reached), f"{variant}: marker reached the upstream"
    if status == 400:
        assert reached == [], variant
        return
    assert status == 200, (variant, status)
    assert [r.target for r in reached] == [CHAT], f"{variant}: forwarded as {[r.target for r in reached]}"


def test_the_plain_path_is_the_control(stack: tuple[GuardProcess, FaultServer]) -> None:
    guard, upstream = stack
    before = len(upstream.recorded())
    body = httpx.Request("POST", "http://x", json=chat(f"my code is {MARKER}")).read()
    assert _post(guard, CHAT, body) == 200
    (reached,) = upstream.recorded()[before:]
    assert reached.target == CHAT and MARKER.encode() not in reached.body and b"my code is" in reached.body
