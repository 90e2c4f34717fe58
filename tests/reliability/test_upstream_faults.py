"""Upstream faults against a real `guard serve`: a closed port, a server that never answers or answers too
late, one that resets mid-stream, 5xx answers, garbage SSE and oversized response heads.

For each: the caller gets a fixed, API-shaped error (502/504) or a cleanly ended stream, the fault is
counted in `guard_upstream_request_duration_seconds{status_class}`, no internal exception text reaches the
caller, no unscreened model text is released (the marker the detector redacts never appears raw), and the
guard keeps serving the next request.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fakes.fault_policy import CHAT, MARKER, chat, fault_policy
from tests.fakes.faults import Behaviour, FaultServer, Mode, closed_port
from tests.fakes.guard_process import GuardProcess, leaked_internals
from tests.fakes.guard_process import StartGuard

READ_TIMEOUT_S = 1.0
TIMEOUT_ARGS = ("--upstream-read-timeout", str(READ_TIMEOUT_S), "--upstream-connect-timeout", "1")


def _upstream_count(guard: GuardProcess, status_class: str) -> float:
    return guard.metric("guard_upstream_request_duration_seconds_count", status_class=status_class)


def _assert_api_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert not leaked_internals(response.text, MARKER), response.text


def _still_serving(guard: GuardProcess) -> None:
    """The guard answers its admin port and refuses the next (also failing) request the same way."""
    assert httpx.get(guard.admin_url + "/healthz", timeout=5).status_code == 200


def test_connection_refused_is_502_and_counted(start_guard: StartGuard) -> None:
    guard = start_guard(f"http://127.0.0.1:{closed_port()}", fault_policy(), TIMEOUT_ARGS)
    for _ in range(3):
        response = httpx.post(guard.url + CHAT, json=chat("hello"), timeout=10)
        _assert_api_error(response, 502, "upstream_unavailable")
    assert _upstream_count(guard, "connect_error") == 3
    _still_serving(guard)


@pytest.mark.parametrize("mode", [Mode.BLACKHOLE, Mode.SLOW])
def test_upstream_slower_than_its_timeout_is_504_and_counted(start_guard: StartGuard, mode: Mode) -> None:
    with FaultServer(Behaviour(mode, delay_s=READ_TIMEOUT_S * 4)) as upstream:
        guard = start_guard(upstream.url, fault_policy(), TIMEOUT_ARGS)
        response = httpx.post(guard.url + CHAT, json=chat("hello"), timeout=20)
        _assert_api_error(response, 504, "upstream_timeout")
        assert _upstream_count(guard, "timeout") == 1
        assert len(upstream.recorded()) == 1  # sent once, never retried behind the caller's back
        _still_serving(guard)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_upstream_5xx_is_counted_and_its_body_never_released_unscreened(
    start_guard: StartGuard, status: int
) -> None:
    with FaultServer(Behaviour(Mode.STATUS, status=status, marker=MARKER)) as upstream:
        guard = start_guard(upstream.url, fault_policy())
        response = httpx.post(guard.url + CHAT, json=chat("hello"), timeout=10)
        assert response.status_code >= 500
        assert MARKER not in response.text  # the upstream's error text was withheld
        assert response.json()["error"]["code"] == "upstream_error"
        assert "Traceback" not in response.text
        assert _upstream_count(guard, "5xx") == 1
        assert len(upstream.recorded()) == 1
        _still_serving(guard)


def test_reset_mid_stream_ends_the_stream_without_unscreened_text(start_guard: StartGuard) -> None:
    with FaultServer(Behaviour(Mode.RESET, marker=MARKER)) as upstream:
        guard = start_guard(upstream.url, fault_policy())
        with httpx.stream("POST", guard.url + CHAT, json=chat("hello", stream=True), timeout=10) as r:
            assert r.status_code == 200
            received = b"".join(r.iter_raw())
        # The text before the reset was still held back (shorter than the window), so it was never
        # screened and is dropped: the stream ends cleanly with nothing released.
        assert received == b""
        assert MARKER.encode() not in received
        assert not leaked_internals(received.decode("utf-8", "replace"))
        assert _upstream_count(guard, "reset") == 1
        assert len(upstream.recorded()) == 1
        _still_serving(guard)


def test_reset_mid_body_of_a_plain_answer_is_502(start_guard: StartGuard) -> None:
    with FaultServer(Behaviour(Mode.RESET, marker=MARKER)) as upstream:
        guard = start_guard(upstream.url, fault_policy())
        response = httpx.post(guard.url + CHAT, json=chat("hello"), timeout=10)
        assert response.status_code == 502
        assert MARKER not in response.text
        assert not leaked_internals(response.text)
        _still_serving(guard)


@pytest.mark.parametrize("tier", ["limited", "high"])
def test_garbage_sse_never_releases_unparsed_text(start_guard: StartGuard, tier: str) -> None:
    with FaultServer(Behaviour(Mode.GARBAGE_SSE, marker=MARKER)) as upstream:
        guard = start_guard(upstream.url, fault_policy(default_tier=tier))
        with httpx.stream("POST", guard.url + CHAT, json=chat("hello", stream=True), timeout=10) as r:
            assert r.status_code == 200
            received = b"".join(r.iter_raw())
        assert MARKER.encode() not in received, received
        assert b"\xff\xfe" not in received
        # Each of the four garbage events was replaced by the fixed error event, nothing else came.
        events = [e for e in received.split(b"\n\n") if e.strip()]
        assert len(events) == 4 and all(b'"code":"upstream_invalid_response"' in e for e in events), received
        _still_serving(guard)


def test_oversized_upstream_headers_are_502(start_guard: StartGuard) -> None:
    with FaultServer(Behaviour(Mode.HUGE_HEADERS, header_bytes=256 * 1024)) as upstream:
        guard = start_guard(upstream.url, fault_policy())
        response = httpx.post(guard.url + CHAT, json=chat("hello"), timeout=10)
        assert response.status_code == 502
        assert response.json()["error"]["type"] == "upstream_error"
        assert not leaked_internals(response.text)
        assert _upstream_count(guard, "connect_error") == 1
        _still_serving(guard)


def test_a_healthy_upstream_is_screened_both_ways(start_guard: StartGuard) -> None:
    """The control for the cases above: the same guard and policy against a well-behaved upstream."""
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        guard = start_guard(upstream.url, fault_policy())
        for _ in range(3):
            response = httpx.post(guard.url + CHAT, json=chat(f"say {MARKER} twice"), timeout=10)
            assert response.status_code == 200
            body = response.json()
            assert MARKER not in json.dumps(body)
            assert response.headers["x-guard-decision"] == "redact"
        # What reached the upstream was screened too: the marker was redacted before forwarding.
        assert all(MARKER.encode() not in r.body for r in upstream.recorded())
