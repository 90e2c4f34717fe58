"""A detector raising or running past its budget, on the prompt and on the model's answer (plain and
streamed), in a fail-open tier (`limited`: on_detector_error allow) and a fail-closed one (`high`: block).

Each case is counted in `guard_detector_errors_total{detector,reason}` and `guard_fail_mode_total
{direction,mode}`; the high tier never lets unscreened text through (the upstream never sees a prompt the
detector could not screen, the caller never sees an answer it could not screen); the exception's text never
reaches the caller or the logs.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakes.fault_policy import CHAT, chat, fault_policy
from tests.fakes.faults import Behaviour, FaultServer, Mode, chat_completion, sse_stream
from tests.fakes.guard_process import leaked_internals
from tests.fakes.guard_process import StartGuard

SECRET = "detector-secret-0xDEADBEEF"
TRIGGER = "FAULT-OUT"  # the detector misbehaves only on texts that carry this
ANSWER = f"the model says {TRIGGER} here"
BUDGET_S = 0.3
REASONS = {"raise": "error", "sleep": "timeout"}


def _policy(mode: str, tier: str) -> dict[str, Any]:
    policy = fault_policy(mode=mode, default_tier=tier, budget_s=BUDGET_S, secret=SECRET)
    settings = policy["detectors"][0]["settings"]
    settings["fault_on"] = TRIGGER
    return policy


@pytest.mark.parametrize("mode", ["raise", "sleep"])
@pytest.mark.parametrize("tier", ["limited", "high"])
def test_detector_fault_on_the_prompt(start_guard: StartGuard, mode: str, tier: str) -> None:
    # The answer does not carry the trigger, so only the prompt's screening fails.
    clean = Behaviour(Mode.SCRIPTED, content_type="application/json", chunks=(chat_completion("fine"),))
    with FaultServer(clean) as upstream:
        guard = start_guard(upstream.url, _policy(mode, tier))
        response = httpx.post(guard.url + CHAT, json=chat(f"please {TRIGGER} now"), timeout=10)
        assert guard.metric("guard_detector_errors_total", detector="marker", reason=REASONS[mode]) == 1
        if tier == "high":
            assert response.status_code == 400, response.text
            assert response.json()["error"]["code"] == "content_filter"
            assert response.headers["x-guard-decision"] == "block"
            assert upstream.recorded() == []  # the unscreened prompt never left the guard
            assert guard.metric("guard_fail_mode_total", direction="input", mode="closed") == 1
        else:
            assert response.status_code == 200, response.text
            assert len(upstream.recorded()) == 1
            assert guard.metric("guard_fail_mode_total", direction="input", mode="open") == 1
        assert not leaked_internals(response.text, SECRET)
        assert SECRET not in guard.logs()


@pytest.mark.parametrize("mode", ["raise", "sleep"])
@pytest.mark.parametrize("tier", ["limited", "high"])
def test_detector_fault_on_a_plain_answer(start_guard: StartGuard, mode: str, tier: str) -> None:
    answer = Behaviour(Mode.SCRIPTED, content_type="application/json", chunks=(chat_completion(ANSWER),))
    with FaultServer(answer) as upstream:
        guard = start_guard(upstream.url, _policy(mode, tier))
        response = httpx.post(guard.url + CHAT, json=chat("hello"), timeout=10)
        assert response.status_code == 200, response.text
        if tier == "high":
            assert TRIGGER not in response.text  # the unscreened answer was withheld
            assert response.json()["choices"][0]["finish_reason"] == "content_filter"
            assert response.headers["x-guard-decision"] == "block"
            assert guard.metric("guard_fail_mode_total", direction="output", mode="closed") == 1
        else:
            assert TRIGGER in response.text
            assert guard.metric("guard_fail_mode_total", direction="output", mode="open") == 1
        assert guard.metric("guard_detector_errors_total", detector="marker", reason=REASONS[mode]) == 1
        assert not leaked_internals(response.text, SECRET)
        assert SECRET not in guard.logs()


@pytest.mark.parametrize("mode", ["raise", "sleep"])
def test_detector_fault_mid_stream_in_the_high_tier_releases_nothing_unscreened(
    start_guard: StartGuard, mode: str
) -> None:
    pieces = ["Once ", "upon ", "a ", "time ", f"{TRIGGER} ", "the ", "end"]
    # One event per write, and a small window, so screened text is released before the fault hits.
    events = [e + b"\n\n" for e in sse_stream(pieces).split(b"\n\n") if e]
    stream = Behaviour(Mode.SCRIPTED, chunks=tuple(events))
    policy = _policy(mode, "high")
    policy["tiers"]["high"]["stream"] = {"window_chars": 8, "overlap_chars": 4}
    with FaultServer(stream) as upstream:
        guard = start_guard(upstream.url, policy)
        with httpx.stream("POST", guard.url + CHAT, json=chat("hello", stream=True), timeout=10) as r:
            assert r.status_code == 200
            received = b"".join(r.iter_raw())
        assert TRIGGER.encode() not in received
        assert b"Once" in received  # text screened before the fault was released as it came
        assert b"content_filter" in received
        assert received.rstrip().endswith(b"data: [DONE]")  # a well-formed end, not a cut connection
        assert guard.metric("guard_fail_mode_total", direction="output", mode="closed") >= 1
        assert not leaked_internals(received.decode(), SECRET)


@pytest.mark.parametrize("tier", ["limited", "high"])
def test_a_detector_returning_garbage_fails_closed_in_every_tier(start_guard: StartGuard, tier: str) -> None:
    """A broken plugin's result is not a finding: even the fail-open tier must not forward what it could
    not screen; the caller gets a fixed error, and the guard keeps serving."""
    with FaultServer(Behaviour(Mode.OK)) as upstream:
        guard = start_guard(upstream.url, _policy("garbage", tier))
        response = httpx.post(guard.url + CHAT, json=chat(f"please {TRIGGER} now"), timeout=10)
        assert response.status_code == 500, response.text
        assert response.json()["error"]["code"] == "internal_error"
        assert guard.metric("guard_unhandled_errors_total") == 1
        assert upstream.recorded() == []
        assert not leaked_internals(response.text, SECRET)
        assert SECRET not in guard.logs()
        fine = httpx.post(guard.url + CHAT, json=chat("hello"), timeout=10)
        assert fine.status_code == 200
