"""Micro-batching: concurrent callers' items go through one function call in the executor.

A caller's `submit(items)` joins the pending batch. The batch is flushed when it holds `max_batch` items or
when `max_wait_s` has passed since its first item, whichever comes first; one batch runs at a time per
batcher (two forward passes of the same model on a small CPU only fight over its cores), and items that
arrive while it runs form the next batch. No task outlives its batch, so nothing needs stopping at exit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

DEFAULT_MAX_BATCH = 32
DEFAULT_MAX_WAIT_S = 0.002


@dataclass
class _Pending(Generic[Item, Result]):
    items: list[Item]
    future: asyncio.Future[list[Result]]


@dataclass
class _Batch(Generic[Item, Result]):
    entries: list[_Pending[Item, Result]] = field(default_factory=list)
    size: int = 0
    full: asyncio.Event = field(default_factory=asyncio.Event)


class MicroBatcher(Generic[Item, Result]):
    """Runs `fn(items) -> results` (same length, same order) in `executor` for batches of callers."""

    def __init__(
        self,
        fn: Callable[[list[Item]], Sequence[Result]],
        executor: Executor,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
    ) -> None:
        self._fn = fn
        self._executor = executor
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._open: _Batch[Item, Result] | None = None
        self._running: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches_run = 0  # observability for tests and benchmarks

    async def submit(self, items: list[Item]) -> list[Result]:
        if not items:
            return []
        loop = asyncio.get_running_loop()
        if self._running is None:
            self._running = asyncio.Lock()
        future: asyncio.Future[list[Result]] = loop.create_future()
        batch = self._open
        if batch is None:
            batch = _Batch()
            self._open = batch
            task = loop.create_task(self._flush(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        batch.entries.append(_Pending(items, future))
        batch.size += len(items)
        if batch.size >= self._max_batch:
            batch.full.set()
            self._open = None  # later callers start the next batch
        return await future

    async def _flush(self, batch: _Batch[Item, Result]) -> None:
        try:
            await asyncio.wait_for(batch.full.wait(), timeout=self._max_wait_s)
        except TimeoutError:
            pass
        if self._open is batch:
            self._open = None
        if self._running is None:  # pragma: no cover - set by submit before any flush exists
            self._running = asyncio.Lock()
        async with self._running:
            flat = [item for entry in batch.entries for item in entry.items]
            loop = asyncio.get_running_loop()
            try:
                results = await loop.run_in_executor(self._executor, self._fn, flat)
                self.batches_run += 1
            except BaseException as exc:  # handed to every caller of the batch, which re-raises it
                for entry in batch.entries:
                    if not entry.future.done():
                        entry.future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                return
            if len(results) != len(flat):
                error = RuntimeError(f"batched function returned {len(results)} results for {len(flat)} items")
                for entry in batch.entries:
                    if not entry.future.done():
                        entry.future.set_exception(error)
                return
            offset = 0
            for entry in batch.entries:
                count = len(entry.items)
                if not entry.future.done():
                    entry.future.set_result(list(results[offset : offset + count]))
                offset += count

    async def aclose(self) -> None:
        """Wait for batches in flight (their callers are waiting for them anyway)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
