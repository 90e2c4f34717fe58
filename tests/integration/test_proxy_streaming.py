"""Streamed output over real sockets: text leaves the guard only after the planted detector has seen it.
A marker the upstream splits over several chunks never reaches the client; a block ends the stream with a
well-formed content_filter event and [DONE]; a client that leaves closes the upstream; the added time to
first token and the hold-back are exported."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.fakes.upstream import FakeUpstream, fake_upstream  # noqa: F401 - fixture
from tests.integration.proxy_harness import MARKER, GuardThread, chat_body, marker_policy, sse_text

CHAT = "/v1/chat/completions"
REPLY = f"Here it comes: {MARKER} and that is all you get from me today, friend."


@pytest.mark.parametrize(("window", "overlap", "chunks"), [(96, 48, 3), (0, 24, 12), (8, 20, len(REPLY)), (32, 48, 7)])
def test_marker_split_across_chunks_never_reaches_the_client(
    fake_upstream: FakeUpstream, tmp_path: Path, window: int, overlap: int, chunks: int  # noqa: F811
) -> None:
    fake_upstream.script(reply=REPLY, chunks=chunks)
    policy = marker_policy(tmp_path, window_chars=window, overlap_chars=overlap)
    with GuardThread(fake_upstream.url, policy) as guard:
        response = httpx.post(guard.url + CHAT, json=chat_body("hi", stream=True))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text, reasons = sse_text(response.text)
        assert MARKER not in response.text
        for cut in range(4, len(MARKER)):  # not even a piece of it long enough to matter
            assert MARKER[:cut] not in response.text.replace("<MARKER>", "")
        assert text == REPLY.replace(MARKER, "<MARKER>")
        assert reasons == ["stop"]
        assert response.text.rstrip().endswith("data: [DONE]")
        assert guard.metric("guard_stream_added_ttft_seconds_count", route="chat") == 1
        assert guard.metric("guard_stream_holdback_bytes_count", route="chat") >= 1
        assert guard.metric("guard_requests_total", direction="output", route="chat", decision="redact") == 1


def test_completions_stream_is_screened_too(fake_upstream: FakeUpstream, tmp_path: Path) -> None:  # noqa: F811
    fake_upstream.script(reply=REPLY, chunks=5)
    with GuardThread(fake_upstream.url, marker_policy(tmp_path)) as guard:
        response = httpx.post(guard.url + "/v1/completions", json={"model": "m", "prompt": "hi", "stream": True})
        text, reasons = sse_text(response.text)
        assert MARKER not in response.text
        assert text == REPLY.replace(MARKER, "<MARKER>")
        assert reasons == ["stop"]


def test_blocked_stream_ends_with_content_filter(fake_upstream: FakeUpstream, tmp_path: Path) -> None:  # noqa: F811
    fake_upstream.script(reply="A harmless start. " * 10 + MARKER + " and more after it.", chunks=20)
    with GuardThread(fake_upstream.url, marker_policy(tmp_path, output_action="block")) as guard:
        response = httpx.post(guard.url + CHAT, json=chat_body("hi", stream=True))
        assert response.status_code == 200
        assert MARKER not in response.text
        text, reasons = sse_text(response.text)
        assert reasons == ["content_filter"]
        assert "Refused by the test policy." in text
        assert "and more after it" not in text
        events = [line for line in response.text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "data: [DONE]"
        for event in events[:-1]:
            json.loads(event[len("data: "):])  # every event is well-formed JSON
        assert guard.metric("guard_requests_total", direction="output", route="chat", decision="block") == 1


def test_client_disconnect_closes_the_upstream(fake_upstream: FakeUpstream, tmp_path: Path) -> None:  # noqa: F811
    fake_upstream.script(reply="word " * 200, chunks=200, chunk_delay_s=0.02)
    with GuardThread(fake_upstream.url, marker_policy(tmp_path, window_chars=0, overlap_chars=0)) as guard:
        with httpx.stream("POST", guard.url + CHAT, json=chat_body("hi", stream=True)) as response:
            for _ in response.iter_raw():
                break  # first bytes arrived: leave
        assert fake_upstream.disconnected.wait(10), "the guard kept the upstream stream open"
        assert guard.metric("guard_rejected_requests_total", reason="client_disconnect") >= 1
        # Still serving.
        fake_upstream.script(reply="ok")
        assert httpx.post(guard.url + CHAT, json=chat_body("again")).status_code == 200


def test_unscreened_stream_is_relayed_as_is(fake_upstream: FakeUpstream) -> None:  # noqa: F811
    from tests.integration.proxy_harness import PASSTHROUGH_POLICY

    fake_upstream.script(reply=REPLY, chunks=50)
    direct = httpx.post(fake_upstream.url + CHAT, json=chat_body("hi", stream=True)).text
    with GuardThread(fake_upstream.url, PASSTHROUGH_POLICY) as guard:
        response = httpx.post(guard.url + CHAT, json=chat_body("hi", stream=True))
        assert response.text == direct
        assert response.headers["x-guard-decision"] == "allow"
