"""`guard.proxy.admission.Admission`: weighted by characters, bounded queue, queue timeout as overload,
answers first and never shed. Real asyncio tasks, a real metrics registry; nothing mocked."""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client import CollectorRegistry

from guard.codecs.base import Reply
from guard.metrics import GuardMetrics
from guard.policy.limits import AdmissionLimits
from guard.proxy.admission import QUEUE_FULL, QUEUE_TIMEOUT, Admission, OverloadedError, overload_reply
from guard.types import Direction

IN, OUT = Direction.INPUT, Direction.OUTPUT


def _admission() -> tuple[Admission, GuardMetrics]:
    metrics = GuardMetrics(CollectorRegistry(), "test")
    return Admission(metrics), metrics


async def _hold(admission: Admission, limits: AdmissionLimits, chars: int, direction: Direction,
                release: asyncio.Event, entered: list[str], name: str) -> None:
    async with admission.admit(limits, chars, direction):
        entered.append(name)
        await release.wait()


@pytest.mark.anyio
async def test_a_large_call_leaves_room_for_small_ones_and_waits_without_blocking_them() -> None:
    admission, _ = _admission()
    limits = AdmissionLimits(max_concurrent=8, max_chars=1000, queue_timeout_s=5)
    release, entered = asyncio.Event(), []
    big = asyncio.create_task(_hold(admission, limits, 800, IN, release, entered, "big"))
    await asyncio.sleep(0)
    second_big = asyncio.create_task(_hold(admission, limits, 800, IN, release, entered, "big2"))
    await asyncio.sleep(0)
    smalls = [asyncio.create_task(_hold(admission, limits, 50, IN, release, entered, f"s{i}")) for i in range(4)]
    await asyncio.sleep(0.01)
    # The second large call waits for room; the small ones behind it were not held back (first fit).
    assert entered == ["big", "s0", "s1", "s2", "s3"]
    assert admission.queued == 1
    release.set()
    await asyncio.gather(big, second_big, *smalls)
    assert "big2" in entered and admission.running == 0


@pytest.mark.anyio
async def test_a_full_queue_sheds_at_once_and_a_long_wait_sheds_as_overload() -> None:
    admission, metrics = _admission()
    limits = AdmissionLimits(max_concurrent=1, max_queue=1, queue_timeout_s=0.05, retry_after_s=3)
    release, entered = asyncio.Event(), []
    running = asyncio.create_task(_hold(admission, limits, 10, IN, release, entered, "a"))
    await asyncio.sleep(0)
    waiting = asyncio.create_task(_hold(admission, limits, 10, IN, release, entered, "b"))
    await asyncio.sleep(0)
    with pytest.raises(OverloadedError) as full:
        async with admission.admit(limits, 10, IN):
            pass
    assert full.value.reason == QUEUE_FULL and full.value.status == 429 and full.value.retry_after_s == 3
    with pytest.raises(OverloadedError) as late:
        await waiting
    assert late.value.reason == QUEUE_TIMEOUT and late.value.status == 503
    assert admission.queued == 0
    release.set()
    await running
    assert metrics.shed.labels(QUEUE_FULL)._value.get() == 1
    assert metrics.shed.labels(QUEUE_TIMEOUT)._value.get() == 1


@pytest.mark.anyio
async def test_answers_go_before_waiting_prompts_and_are_never_shed() -> None:
    admission, _ = _admission()
    limits = AdmissionLimits(max_concurrent=1, max_queue=0, queue_timeout_s=0.01)
    release, entered = asyncio.Event(), []
    running = asyncio.create_task(_hold(admission, limits, 10, IN, release, entered, "prompt"))
    await asyncio.sleep(0)
    answer = asyncio.create_task(_hold(admission, limits, 10, OUT, asyncio.Event(), entered, "answer"))
    await asyncio.sleep(0.05)  # longer than queue_timeout_s: an answer still waits
    assert not answer.done()
    release.set()
    await running
    await asyncio.sleep(0)
    assert entered == ["prompt", "answer"]
    answer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await answer
    assert admission.running == 0 and admission.queued == 0


def test_the_shed_answer_is_api_shaped_with_retry_after() -> None:
    reply = overload_reply(None, OverloadedError(QUEUE_TIMEOUT, 2))
    assert reply.status == 503 and ("retry-after", "2") in reply.headers
    error = json.loads(reply.body)["error"]
    assert error["code"] == "overloaded" and error["type"] == "server_error"

    class AnthropicShaped:
        def render_error(self, status: int, message: str, code: str, error_type: str) -> Reply:
            return Reply(status, json.dumps({"type": "error", "error": {"type": "overloaded_error"}}).encode())

    other = overload_reply(AnthropicShaped(), OverloadedError(QUEUE_FULL, 5))
    assert json.loads(other.body)["type"] == "error" and ("retry-after", "5") in other.headers
