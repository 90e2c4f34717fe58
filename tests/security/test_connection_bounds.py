"""Connection bounds on both ports of a real `guard serve` (issue 15, deliver 2), from raw sockets.

Short limits make each case fast: a 1 s head timeout, a 1.5 s body timeout, a 1 s keep-alive and an 8 KiB
head. Slow or endless heads are cut while normal requests on other connections are answered; a head that
never ends is answered 431 at the limit, with the guard's resident memory barely moved.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.fault_policy import CHAT, chat, fault_policy, write_policy
from tests.fakes.faults import Behaviour, FaultServer, Mode
from tests.fakes.guard_process import GuardProcess

BOUNDS = [
    "--head-timeout", "1", "--body-timeout", "1.5", "--keepalive-timeout", "1",
    "--max-head-bytes", "8192", "--max-client-connections", "32",
]


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Read until the peer closes (True) or `seconds` pass (False); returns what arrived."""
    sock.settimeout(0.2)
    got = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


@pytest.fixture(scope="module")
def guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardProcess]:
    """One guard for the module (each case uses its own connections; start-up is the slow part)."""
    workdir = tmp_path_factory.mktemp("bounds")
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        policy = write_policy(workdir / "policy.yaml", fault_policy())
        with GuardProcess(upstream.url, policy, workdir, extra_args=BOUNDS) as process:
            yield process


def test_slow_header_connections_are_closed_while_normal_traffic_is_served(guard: GuardProcess) -> None:
    for port in (guard.port, guard.admin_port):
        slow = [_connect(port) for _ in range(10)]
        for sock in slow:
            sock.sendall(b"POST " + CHAT.encode() + b" HTTP/1.1\r\nhost: x\r\n")
        started = time.monotonic()
        # Normal traffic is served meanwhile (a header byte every 0.3 s keeps nobody else waiting).
        with httpx.Client(timeout=5) as client:
            for i in range(4):
                for sock in slow:
                    sock.sendall(b"x-slow-%d: 1\r\n" % i)
                if port == guard.port:
                    assert client.post(guard.url + CHAT, json=chat("hello")).status_code == 200
                else:
                    assert client.get(guard.admin_url + "/healthz").status_code == 200
                time.sleep(0.3)
        for sock in slow:
            closed, got = _closed_within(sock, 3.0)
            assert closed, "a slow head stayed open past the head timeout"
            assert got.startswith(b"HTTP/1.1 408"), got[:80]
            sock.close()
        assert time.monotonic() - started < 4.0


def test_idle_and_half_sent_body_connections_are_closed(guard: GuardProcess) -> None:
    idle = _connect(guard.port)  # never sends a byte
    body = _connect(guard.port)
    body.sendall(
        b"POST " + CHAT.encode() + b" HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 1000\r\n\r\n{\"model\":"
    )
    kept = _connect(guard.port)  # one answered request, then idle on keep-alive
    payload = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
    kept.sendall(
        b"POST " + CHAT.encode() + b" HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
    )
    for sock, within in ((idle, 2.5), (body, 3.0), (kept, 3.0)):
        closed, got = _closed_within(sock, within)
        assert closed, got[:200]
        sock.close()
    assert got.startswith(b"HTTP/1.1 200")  # the kept-alive one was answered before it was closed


def test_a_never_ending_head_is_cut_at_the_limit_with_bounded_memory(guard: GuardProcess) -> None:
    before = guard.rss_bytes()
    sock = _connect(guard.port)
    sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\nx-endless: ")
    sent = 0
    chunk = b"a" * 65536
    try:
        while sent < 64 * 1024 * 1024:  # 64 MiB offered; the guard must stop reading long before
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    closed, got = _closed_within(sock, 3.0)
    sock.close()
    assert closed
    assert sent < 16 * 1024 * 1024, f"{sent} bytes accepted before the cut"
    assert got.startswith(b"HTTP/1.1 431") or got == b"", got[:80]
    growth = guard.rss_bytes() - before
    assert growth <= 50 * 1024 * 1024, f"RSS grew {growth / 2**20:.1f} MiB"
    with httpx.Client(timeout=5) as client:
        assert client.post(guard.url + CHAT, json=chat("hello")).status_code == 200


def test_a_head_over_the_limit_gets_431_and_one_under_is_served(guard: GuardProcess) -> None:
    before = guard.metric("guard_rejected_requests_total", reason="headers_too_large")
    with httpx.Client(timeout=5) as client:
        ok = client.post(guard.url + CHAT, json=chat("hello"), headers={"x-pad": "p" * 6000})
        assert ok.status_code == 200
        big = client.post(guard.url + CHAT, json=chat("hello"), headers={"x-pad": "p" * 9000})
        assert big.status_code == 431
        assert big.json()["error"]["code"] == "headers_too_large"
    assert guard.metric("guard_rejected_requests_total", reason="headers_too_large") == before + 1


def test_connections_beyond_the_cap_get_503_with_retry_after(guard: GuardProcess) -> None:
    held = [_connect(guard.admin_port) for _ in range(32)]
    time.sleep(0.2)  # let the guard accept them all
    extra = _connect(guard.admin_port)
    closed, got = _closed_within(extra, 2.0)
    extra.close()
    assert closed and got.startswith(b"HTTP/1.1 503"), got[:120]
    assert b"retry-after: 1" in got
    for sock in held:
        sock.close()
    time.sleep(0.2)
    assert httpx.get(guard.admin_url + "/healthz", timeout=5).status_code == 200
