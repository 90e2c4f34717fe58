"""Micro-batching: concurrent callers share one call of the batched function, results go back in order."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from guard.detectors.microbatch import MicroBatcher

pytestmark = pytest.mark.anyio


class Recorder:
    """A real batched function: squares numbers and records each batch it was given."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.lock = threading.Lock()

    def __call__(self, items: list[int]) -> list[int]:
        with self.lock:
            self.batches.append(list(items))
        return [i * i for i in items]


async def test_concurrent_callers_are_batched_and_answered_in_order() -> None:
    recorder = Recorder()
    with ThreadPoolExecutor(1) as executor:
        batcher = MicroBatcher(recorder, executor, max_batch=64, max_wait_s=0.01)
        results = await asyncio.gather(*(batcher.submit([i, i + 100]) for i in range(20)))
        await batcher.aclose()
    assert results == [[i * i, (i + 100) ** 2] for i in range(20)]
    assert len(recorder.batches) == 1
    assert sorted(recorder.batches[0]) == sorted([i for j in range(20) for i in (j, j + 100)])


async def test_a_full_batch_is_flushed_without_waiting() -> None:
    recorder = Recorder()
    with ThreadPoolExecutor(1) as executor:
        batcher = MicroBatcher(recorder, executor, max_batch=4, max_wait_s=30.0)
        results = await asyncio.wait_for(asyncio.gather(*(batcher.submit([i]) for i in range(8))), timeout=5)
    assert results == [[i * i] for i in range(8)]
    assert [len(b) for b in recorder.batches] == [4, 4]


async def test_errors_reach_every_caller_of_the_batch() -> None:
    def broken(items: list[int]) -> list[int]:
        raise ValueError("boom")

    with ThreadPoolExecutor(1) as executor:
        batcher = MicroBatcher(broken, executor, max_wait_s=0.005)
        outcomes = await asyncio.gather(batcher.submit([1]), batcher.submit([2]), return_exceptions=True)
    assert all(isinstance(o, ValueError) for o in outcomes)


async def test_wrong_result_count_is_an_error_not_a_misalignment() -> None:
    with ThreadPoolExecutor(1) as executor:
        batcher = MicroBatcher(lambda items: items[:-1], executor, max_wait_s=0.001)
        with pytest.raises(RuntimeError, match="results for"):
            await batcher.submit([1, 2, 3])


async def test_empty_submit_returns_at_once() -> None:
    with ThreadPoolExecutor(1) as executor:
        batcher = MicroBatcher(Recorder(), executor)
        assert await batcher.submit([]) == []
