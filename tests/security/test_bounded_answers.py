"""Bounded answers (issue 15): a huge or endless streamed answer ends at its tier's cap in the API's shape,
the guard's memory stays within the pod limit while it streams, the audit digest of a streamed answer is
computed as it passes, and `/readyz` says not ready while the upstream pool is saturated.

A real `guard serve` (the fault battery's policy: a planted, cheap detector, so the run measures the
guard's own handling rather than model speed) in front of real loopback upstreams (`tests/fakes/faults.py`):
`ENDLESS_SSE` offers a 400 MB (or 50 MB) chat stream generated as it is sent. Before: a 400 MB stream
added ~390 MiB to the guard (kept whole for the audit HMAC), a 50 MB review-tier stream took 4.3 GB.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.fault_policy import CHAT, chat, fault_policy
from tests.fakes.faults import Behaviour, FaultServer, Mode, sse_event
from tests.fakes.guard_process import GuardProcess, StartGuard

POD_LIMIT_BYTES = 1536 * 1024 * 1024  # deploy/: the guard container's memory limit
DEFAULT_MAX_BYTES = 16 * 1024 * 1024  # guard.policy.limits.AnswerLimits defaults
DEFAULT_MAX_HELD_CHARS = 262_144
KEY = "bounded-answers-test-key"


def _policy() -> dict[str, Any]:
    policy = fault_policy(trusted_sources=["127.0.0.1/32"])
    tiers = policy["tiers"]
    # Wide windows: the cost measured is the guard's streaming, not thousands of detector calls.
    tiers["limited"]["stream"] = {"window_chars": 4096, "overlap_chars": 64}
    # A tier whose answers may go to review: held whole, so the held-text cap applies.
    tiers["held"] = {"on_detector_error": "block", "output": {"pii": {"medium": {"min_score": 0.5, "action": "review"}}}}
    tiers["brief"] = {"answer": {"max_duration_s": 1.0}, "output": {"pii": {"medium": {"min_score": 0.5, "action": "redact"}}}}
    # A tier header is trusted, so the policy orders its tiers (lowest risk first).
    policy["tier_order"] = ["brief", *[t for t in tiers if t not in ("brief", "held")], "held"]
    return policy


class RssSampler:
    """Samples the guard's VmRSS every 20 ms on a thread while a stream runs."""

    def __init__(self, guard: GuardProcess) -> None:
        self._guard = guard
        self.peak = guard.rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._guard.rss_bytes())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def _stream(guard: GuardProcess, tier: str) -> tuple[int, list[dict[str, Any]], float]:
    """(bytes received, the parsed events, seconds) of one streamed chat answer."""
    started = time.perf_counter()
    received = 0
    buffer = b""
    with httpx.stream(
        "POST", guard.url + CHAT, json=chat("write a long report", stream=True), headers={"x-guard-tier": tier},
        timeout=60.0,
    ) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            received += len(chunk)
            buffer = (buffer + chunk)[-65536:]  # only the tail is kept: the last events
    events = []
    for block in buffer.split(b"\n\n"):
        if block.startswith(b"data: {"):
            events.append(json.loads(block[len(b"data: ") :]))
    assert buffer.rstrip().endswith(b"data: [DONE]"), buffer[-200:]
    return received, events, time.perf_counter() - started


@pytest.fixture
def endless(request: pytest.FixtureRequest) -> Iterator[FaultServer]:
    with FaultServer(Behaviour(Mode.ENDLESS_SSE, total_bytes=request.param)) as server:
        yield server


@pytest.mark.parametrize(
    ("endless", "tier", "cap", "bound"),
    [
        (400 * 1024 * 1024, "limited", "bytes", DEFAULT_MAX_BYTES),
        (50 * 1024 * 1024, "held", "held_chars", DEFAULT_MAX_HELD_CHARS),
    ],
    indirect=["endless"],
    ids=["400MB-stream", "50MB-review-tier-stream"],
)
def test_a_huge_stream_ends_at_its_cap_within_the_pod_limit(
    endless: FaultServer, tier: str, cap: str, bound: int, start_guard: StartGuard, tmp_path: Path
) -> None:
    guard = start_guard(endless.url, _policy(), ["--audit", str(tmp_path / "audit.jsonl")],
                        env={"GUARD_AUDIT_HMAC_KEY": KEY})
    before = guard.rss_bytes()
    with RssSampler(guard) as rss:
        received, events, seconds = _stream(guard, tier)
    final = events[-1]["choices"][0]
    assert final["finish_reason"] == "content_filter"
    assert "limit" in final["delta"]["content"] or "longer than" in final["delta"]["content"]
    assert received < bound + 1024 * 1024, received  # nothing past the cap went out
    assert guard.metric("guard_answer_caps_total", cap=cap) == 1
    assert rss.peak < POD_LIMIT_BYTES, rss.peak
    assert rss.peak - before < 128 * 1024 * 1024, (before, rss.peak)  # the answer was never kept whole
    assert seconds < 30, seconds
    # The guard keeps serving once the upstream stream was cut.
    assert httpx.get(guard.admin_url + "/readyz", timeout=5).status_code == 200


def test_a_slow_stream_ends_at_its_duration_cap(start_guard: StartGuard) -> None:
    pieces = [sse_event("one more sentence of the answer. ") for _ in range(40)]
    with FaultServer(Behaviour(Mode.SCRIPTED, chunks=tuple(pieces), chunk_pause_s=0.1)) as upstream:
        guard = start_guard(upstream.url, _policy())
        received, events, seconds = _stream(guard, "brief")
    assert events[-1]["choices"][0]["finish_reason"] == "content_filter"
    assert seconds < 3.0, seconds  # cut at ~1 s, not after the 4 s the upstream would take
    assert guard.metric("guard_answer_caps_total", cap="duration") == 1


def test_the_audit_digest_of_a_stream_equals_the_hmac_of_its_whole_text(
    start_guard: StartGuard, tmp_path: Path
) -> None:
    words = [f"word{n} " for n in range(300)]
    pieces = tuple(sse_event(w) for w in words) + (sse_event(None, "stop"), b"data: [DONE]\n\n")
    audit = tmp_path / "audit.jsonl"
    with FaultServer(Behaviour(Mode.SCRIPTED, chunks=pieces, chunk_pause_s=0.0)) as upstream:
        guard = start_guard(upstream.url, _policy(), ["--audit", str(audit)], env={"GUARD_AUDIT_HMAC_KEY": KEY})
        _stream(guard, "limited")
    output: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while not output and time.monotonic() < deadline:  # the record is appended once the stream has ended
        records = [json.loads(line) for line in audit.read_text().splitlines()]
        output = [r for r in records if r.get("direction") == "output"]
        time.sleep(0.05)
    expected = hmac.new(KEY.encode(), "".join(words).encode(), hashlib.sha256).hexdigest()
    assert output and output[-1]["text_hmac"] == [expected]


def test_readyz_is_not_ready_while_the_upstream_pool_is_saturated(start_guard: StartGuard) -> None:
    with FaultServer(Behaviour(Mode.SLOW, delay_s=3.0)) as upstream:
        guard = start_guard(upstream.url, _policy(), ["--max-connections", "2"])
        assert httpx.get(guard.admin_url + "/readyz", timeout=5).status_code == 200
        results: list[int] = []

        def call() -> None:
            results.append(httpx.post(guard.url + CHAT, json=chat("hello"), timeout=30).status_code)

        threads = [threading.Thread(target=call) for _ in range(2)]
        for thread in threads:
            thread.start()
        statuses = set()
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            statuses.add(httpx.get(guard.admin_url + "/readyz", timeout=5).status_code)
            time.sleep(0.05)
        for thread in threads:
            thread.join(30)
        assert results == [200, 200]
        assert 503 in statuses, statuses
        assert httpx.get(guard.admin_url + "/readyz", timeout=5).status_code == 200
