"""Bad input against a real `guard serve`, from real sockets: malformed or deep JSON, wrong or missing
content types, bodies past the limit (declared and chunked), invalid UTF-8, thousands of messages, a huge
single string, CR/LF in header values, oversized headers, and clients that vanish mid-upload or mid-stream.

Each gets an API-shaped error with the right status (and a `guard_rejected_requests_total{reason}` count)
or a clean close; nothing reaches the upstream that the guard refused; the guard keeps serving. One guard
serves the whole module: every case also proves the previous ones left it healthy.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.fault_policy import CHAT, MARKER, chat, fault_policy, write_policy
from tests.fakes.faults import Behaviour, FaultServer, Mode
from tests.fakes.guard_process import GuardProcess, leaked_internals

MAX_BODY = 64 * 1024
MAX_DEPTH = 32
MAX_TEXTS = 500


@pytest.fixture(scope="module")
def upstream() -> Iterator[FaultServer]:
    with FaultServer(Behaviour(Mode.SLOW, delay_s=0.01)) as server:
        yield server


@pytest.fixture(scope="module")
def guard(upstream: FaultServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardProcess]:
    workdir = tmp_path_factory.mktemp("bad-input")
    limits = {"max_body_bytes": MAX_BODY, "max_json_depth": MAX_DEPTH, "max_texts": MAX_TEXTS}
    policy = write_policy(workdir / "policy.yaml", fault_policy(limits=limits))
    with GuardProcess(upstream.url, policy, workdir) as process:
        yield process


def _raw(guard: GuardProcess, data: bytes, read: bool = True, timeout: float = 10.0) -> bytes:
    """Send bytes on a fresh connection; return everything the guard answered until it closed or went quiet."""
    with socket.create_connection(("127.0.0.1", guard.port), timeout=timeout) as sock:
        sock.sendall(data)
        if not read:
            return b""
        out = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
                if b"\r\n\r\n" in out and _complete(out):
                    break
        except (TimeoutError, ConnectionResetError):
            pass
        return out


def _complete(raw: bytes) -> bool:
    head, _, body = raw.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def _post(guard: GuardProcess, body: bytes, content_type: str | None = "application/json") -> httpx.Response:
    headers = {} if content_type is None else {"content-type": content_type}
    return httpx.post(guard.url + CHAT, content=body, headers=headers, timeout=30)


def _assert_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, (response.status_code, response.text[:300])
    error: dict[str, object] = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    # Python's own exception text ("Expecting value: line 1 column 2 (char 1)") never reaches the caller.
    assert not leaked_internals(response.text, MARKER, "Expecting", "(char "), response.text
    return error


def _rejected(guard: GuardProcess, reason: str) -> float:
    return guard.metric("guard_rejected_requests_total", reason=reason)


def _serves(guard: GuardProcess) -> None:
    response = httpx.post(guard.url + CHAT, json=chat("still here?"), timeout=10)
    assert response.status_code == 200, response.text


def _unseen(upstream: FaultServer, needle: bytes) -> None:
    assert all(needle not in r.body for r in upstream.recorded())


def test_malformed_json(guard: GuardProcess, upstream: FaultServer) -> None:
    before = _rejected(guard, "malformed_json")
    _assert_error(_post(guard, b'{"messages": [ {"role": "user", "content": "unterminated-1"'), 400)
    assert _rejected(guard, "malformed_json") == before + 1
    _unseen(upstream, b"unterminated-1")
    _serves(guard)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_or_missing_content_type(guard: GuardProcess, upstream: FaultServer, content_type: str | None) -> None:
    body = json.dumps(chat("wrong-type-2")).encode()
    _assert_error(_post(guard, body, content_type), 415)
    _unseen(upstream, b"wrong-type-2")
    _serves(guard)


def test_body_past_the_limit_declared(guard: GuardProcess, upstream: FaultServer) -> None:
    before = _rejected(guard, "body_too_large")
    body = json.dumps(chat("too-big-3 " + "a" * MAX_BODY)).encode()
    _assert_error(_post(guard, body), 413)
    assert _rejected(guard, "body_too_large") == before + 1
    _unseen(upstream, b"too-big-3")
    _serves(guard)


def test_body_past_the_limit_chunked(guard: GuardProcess, upstream: FaultServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"messages": [{"role": "user", "content": "chunked-4 '
        for _ in range(MAX_BODY // 4096 + 2):
            yield b"b" * 4096
        yield b'"}]}'

    response = httpx.post(
        guard.url + CHAT, content=chunks(), headers={"content-type": "application/json"}, timeout=30
    )
    _assert_error(response, 413)
    _unseen(upstream, b"chunked-4")
    _serves(guard)


def test_invalid_utf8(guard: GuardProcess, upstream: FaultServer) -> None:
    before = _rejected(guard, "invalid_utf8")
    _assert_error(_post(guard, b'{"messages": [{"role": "user", "content": "bad-utf8-5 \xff\xfe\xc3"}]}'), 400)
    assert _rejected(guard, "invalid_utf8") == before + 1
    _unseen(upstream, b"bad-utf8-5")
    _serves(guard)


def test_lone_surrogate_escape_is_screened(guard: GuardProcess, upstream: FaultServer) -> None:
    # Valid JSON (an escape, not raw bytes): screened and forwarded as the caller wrote it.
    response = _post(guard, b'{"messages": [{"role": "user", "content": "surrogate-6 \\ud800"}]}')
    assert response.status_code == 200, response.text
    assert any(b"surrogate-6 \\ud800" in r.body for r in upstream.recorded())
    assert not leaked_internals(response.text)
    _serves(guard)


def test_json_nested_past_the_depth_limit(guard: GuardProcess, upstream: FaultServer) -> None:
    before = _rejected(guard, "too_deep")
    deep = b'{"messages": [{"role": "user", "content": "deep-7"}], "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    _assert_error(_post(guard, deep), 400)
    assert _rejected(guard, "too_deep") == before + 1
    _unseen(upstream, b"deep-7")
    _serves(guard)


def test_thousands_of_messages_past_max_texts(guard: GuardProcess, upstream: FaultServer) -> None:
    # 2,000 one-letter messages: under the byte limit, four times the text limit.
    messages = [{"role": "user", "content": "m"} for _ in range(MAX_TEXTS * 4)]
    body = json.dumps({"model": "fake", "messages": messages, "tag": "many-8"}, separators=(",", ":")).encode()
    assert len(body) < MAX_BODY
    before = _rejected(guard, "body_too_large")
    error = _assert_error(_post(guard, body), 413)
    assert "texts" in str(error["message"])
    assert _rejected(guard, "body_too_large") == before + 1
    _unseen(upstream, b"many-8")
    _serves(guard)


def test_many_messages_within_the_limit_are_screened(guard: GuardProcess, upstream: FaultServer) -> None:
    messages = [{"role": "user", "content": f"m{i}"} for i in range(MAX_TEXTS - 10)]
    messages[-1]["content"] = f"last {MARKER}"
    response = _post(guard, json.dumps({"model": "fake", "messages": messages}).encode())
    assert response.status_code == 200, response.text[:300]
    assert response.headers["x-guard-decision"] == "redact"
    _unseen(upstream, MARKER.encode())


def test_huge_single_string_within_the_limit(guard: GuardProcess, upstream: FaultServer) -> None:
    # Half the limit: the echo upstream answers with it, and the answer must fit the same limit.
    text = "h" * (MAX_BODY // 2) + MARKER
    response = _post(guard, json.dumps(chat(text)).encode())
    assert response.status_code == 200, response.text[:300]
    _unseen(upstream, MARKER.encode())
    _serves(guard)


def test_cr_lf_in_header_values_never_reach_the_upstream(guard: GuardProcess, upstream: FaultServer) -> None:
    body = json.dumps(chat("crlf-9")).encode()
    for bad in (b"x-note: a\rinjected: 1", b"x-note: a\ninjected: 1", b"x-note: a\x00b"):
        request = (
            b"POST " + CHAT.encode() + b" HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + bad + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        answer = _raw(guard, request)
        assert _status(answer) == 400, answer[:200]  # refused by the HTTP parser itself
    for recorded in upstream.recorded():
        assert recorded.header("injected") is None
        assert all("\r" not in v and "\n" not in v for _, v in recorded.headers)
    # A request id carrying CR/LF is replaced, never echoed into a response header.
    response = httpx.post(guard.url + CHAT, json=chat("rid"), headers={"x-request-id": "abc%0d%0aset-cookie:x"})
    assert "set-cookie" not in response.headers
    assert response.headers["x-guard-request-id"] != "abc%0d%0aset-cookie:x"
    _serves(guard)


def test_oversized_headers(guard: GuardProcess, upstream: FaultServer) -> None:
    body = json.dumps(chat("big-header-10")).encode()
    request = (
        b"POST " + CHAT.encode() + b" HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + b"x-big: " + b"y" * (512 * 1024) + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    before = _rejected(guard, "headers_too_large")
    answer = _raw(guard, request)
    assert _status(answer) == 431, answer[:200]
    assert _rejected(guard, "headers_too_large") == before + 1
    _unseen(upstream, b"big-header-10")
    _serves(guard)


def test_client_disconnects_mid_upload(guard: GuardProcess, upstream: FaultServer) -> None:
    head = (
        b"POST " + CHAT.encode() + b" HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 50000\r\n\r\n"
    )
    before = _rejected(guard, "client_disconnect")
    for _ in range(5):
        _raw(guard, head + b'{"messages": [{"role": "user", "content": "half-11', read=False)
    _serves(guard)
    _unseen(upstream, b"half-11")
    deadline = time.monotonic() + 5
    while _rejected(guard, "client_disconnect") < before + 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _rejected(guard, "client_disconnect") == before + 5


def test_client_disconnects_mid_stream(tmp_path: Path) -> None:
    """The caller hangs up while a slow stream is being screened: the guard stops reading the upstream,
    frees the connection, and serves the next caller; its fd count returns to where it was."""
    pieces = [f"word{i} ".encode() for i in range(200)]
    events = tuple(b'data: {"choices": [{"index": 0, "delta": {"content": "' + p + b'"}}]}\n\n' for p in pieces)
    slow = Behaviour(Mode.SCRIPTED, chunks=events, chunk_pause_s=0.05)
    with FaultServer(slow) as upstream:
        policy = write_policy(tmp_path / "p.yaml", fault_policy())
        with GuardProcess(upstream.url, policy, tmp_path) as guard:
            baseline = guard.fd_count()
            for _ in range(3):
                with httpx.stream("POST", guard.url + CHAT, json=chat("go", stream=True), timeout=10) as r:
                    assert r.status_code == 200
                    next(r.iter_raw())
                # leaving the block closes the connection mid-stream
            deadline = time.monotonic() + 10
            while guard.fd_count() > baseline + 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert guard.fd_count() <= baseline + 2
            assert httpx.get(guard.admin_url + "/healthz", timeout=5).status_code == 200
