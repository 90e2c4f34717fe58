"""Admission control for screening: overload is shed with 429/503 and `Retry-After`, never answered as
a verdict (issue 9), and one large prompt slows only itself (issue 15).

Without it, 256 concurrent benign prompts on 2 cores all started screening at once; each waited behind
the others inside the detectors' executor until its detector budget ran out, and the policy's
`on_detector_error: block` turned queueing into 64 of 400 `content_filter` refusals. Now:

- every screening call (one message, either direction) is admitted before its detectors start, and the
  detector budget starts only then (`Stepper.decide`), so time in this queue is never a detector timeout;
- a call weighs its characters: at most `max_concurrent` calls and `max_chars` characters are screened at
  once (`limits.admission`); the policy keeps `max_chars` above `max_body_bytes`, so the largest prompt
  still leaves room for small ones, and a waiter that does not fit does not hold back later ones that do
  (first fit, so a 1 MB prompt waits for room without blocking the queue behind it);
- a prompt that cannot start waits in a bounded queue; a full queue answers 429 at once, a wait past
  `queue_timeout_s` answers 503, both with `Retry-After` in the API's error shape, counted in
  `guard_shed_requests_total{reason}`;
- answers (the output direction) are admitted before any waiting prompt and are never shed: their
  request has already reached the model, so refusing now would waste that call. Their wait is bounded by
  the budgets of the calls running ahead of them.

Nothing here releases text: a shed prompt is refused before the upstream sees it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from guard.codecs.base import Reply
from guard.errors import GuardError
from guard.metrics import GuardMetrics
from guard.policy.limits import AdmissionLimits
from guard.proxy import errors
from guard.types import Direction

QUEUE_FULL = "queue_full"
QUEUE_TIMEOUT = "queue_timeout"
_MESSAGES = {
    QUEUE_FULL: "The guard is screening as many requests as it can; retry after the time in Retry-After.",
    QUEUE_TIMEOUT: "The guard could not start screening this request in time; retry after the time in Retry-After.",
}
_STATUS = {QUEUE_FULL: 429, QUEUE_TIMEOUT: 503}
_CODE = {QUEUE_FULL: "rate_limit_exceeded", QUEUE_TIMEOUT: "overloaded"}
_TYPE = {QUEUE_FULL: "rate_limit_error", QUEUE_TIMEOUT: "server_error"}


class OverloadedError(GuardError):
    """A prompt was shed: not screened, not forwarded. Answered with `overload_reply`, never a verdict."""

    def __init__(self, reason: str, retry_after_s: int) -> None:
        super().__init__(_MESSAGES[reason])
        self.reason = reason
        self.retry_after_s = retry_after_s
        self.status = _STATUS[reason]


@runtime_checkable
class ErrorRendering(Protocol):
    """What a codec offers when its API's errors are not OpenAI-shaped (an Anthropic codec answers
    `{"type": "error", "error": {...}}`): the guard's own error answers are rendered through it."""

    def render_error(self, status: int, message: str, code: str, error_type: str) -> Reply: ...


def overload_reply(codec: object | None, error: OverloadedError) -> Reply:
    """The shed answer in the route's API shape (OpenAI's unless the codec renders its own), with
    `Retry-After` so clients and their SDKs back off and retry."""
    code, kind = _CODE[error.reason], _TYPE[error.reason]
    if isinstance(codec, ErrorRendering):
        reply = codec.render_error(error.status, str(error), code, kind)
    else:
        reply = Reply(error.status, errors.error_body(str(error), code, kind))
    return Reply(reply.status, reply.body, reply.content_type, (*reply.headers, ("retry-after", str(error.retry_after_s))))


@dataclass(eq=False)
class _Waiter:
    weight: int
    future: asyncio.Future[None] = field(repr=False)


class Admission:
    """A weighted, two-lane semaphore over screening calls. One per app; limits are read per call, so a
    policy reload changes them at once (calls already admitted keep their grant)."""

    def __init__(self, metrics: GuardMetrics) -> None:
        self._metrics = metrics
        self._running = 0
        self._chars = 0
        self._answers: deque[_Waiter] = deque()  # output: served first, never shed
        self._prompts: deque[_Waiter] = deque()  # input: bounded, timed out
        self._limits = AdmissionLimits()

    @property
    def running(self) -> int:
        return self._running

    @property
    def queued(self) -> int:
        return len(self._answers) + len(self._prompts)

    @asynccontextmanager
    async def admit(self, limits: AdmissionLimits, chars: int, direction: Direction) -> AsyncIterator[None]:
        """Hold a grant for `chars` characters while the block runs; `OverloadedError` for a prompt
        that cannot be admitted. A call larger than `max_chars` is admitted alone."""
        self._limits = limits
        weight = max(1, min(chars, limits.max_chars))
        started = time.perf_counter()
        # Every waiter left in a queue is one that does not fit (`_wake` runs on every release), so a
        # call that fits now overtakes nobody who could have run.
        if self._fits(weight):
            self._grant(weight)
        else:
            await self._wait(weight, direction, limits)
        self._metrics.observe_admission(direction, time.perf_counter() - started, self._running, self.queued)
        try:
            yield
        finally:
            self._running -= 1
            self._chars -= weight
            self._wake()
            self._metrics.set_admission(self._running, self.queued)

    def _fits(self, weight: int) -> bool:
        limits = self._limits
        if self._running >= limits.max_concurrent:
            return False
        return self._running == 0 or self._chars + weight <= limits.max_chars

    def _grant(self, weight: int) -> None:
        self._running += 1
        self._chars += weight

    async def _wait(self, weight: int, direction: Direction, limits: AdmissionLimits) -> None:
        answer = direction is Direction.OUTPUT
        lane = self._answers if answer else self._prompts
        if not answer and len(self._prompts) >= limits.max_queue:
            self._shed(QUEUE_FULL, limits)
        waiter = _Waiter(weight, asyncio.get_running_loop().create_future())
        lane.append(waiter)
        self._metrics.set_admission(self._running, self.queued)
        try:
            if answer:
                await waiter.future
            else:
                await asyncio.wait_for(asyncio.shield(waiter.future), limits.queue_timeout_s)
        except BaseException as exc:
            if waiter.future.done() and not waiter.future.cancelled():
                # Granted in the same instant it timed out or was cancelled: hand the grant back.
                self._running -= 1
                self._chars -= weight
                self._wake()
            else:
                waiter.future.cancel()
                lane.remove(waiter)
            self._metrics.set_admission(self._running, self.queued)
            if isinstance(exc, TimeoutError):
                self._shed(QUEUE_TIMEOUT, limits)
            raise

    def _wake(self) -> None:
        """Grant waiters that fit: answers first, then prompts; each lane in order, first fit."""
        for lane in (self._answers, self._prompts):
            for waiter in list(lane):
                if self._running >= self._limits.max_concurrent:
                    return
                if waiter.future.done():
                    continue
                if self._fits(waiter.weight):
                    lane.remove(waiter)
                    self._grant(waiter.weight)
                    waiter.future.set_result(None)

    def _shed(self, reason: str, limits: AdmissionLimits) -> None:
        self._metrics.observe_shed(reason)
        raise OverloadedError(reason, limits.retry_after_s)
