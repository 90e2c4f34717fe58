"""Slot roles reach detectors by their batch's positions, and untrusted content is cached apart (issue 10):
the same text as a user turn and as a tool result may be screened differently, so one must never answer
for the other from the cache."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from guard.detectors.base import DetectorResources
from guard.metrics import GuardMetrics
from guard.screening import Screener, ScreeningCache
from guard.types import Category, Direction, Finding, ScanContext


class RoleRecorder:
    """Finds nothing; records each batch it is given with the roles it saw."""

    name = "roles"
    version = "1"
    categories = frozenset({Category.PROMPT_INJECTION})

    def __init__(self) -> None:
        self.batches: list[tuple[tuple[str, ...], tuple[bool, ...]]] = []

    async def load(self, resources: DetectorResources) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def detect(self, texts: Sequence[str], ctx: ScanContext) -> Sequence[Sequence[Finding]]:
        self.batches.append((tuple(texts), tuple(ctx.untrusted(i) for i in range(len(texts)))))
        return [() for _ in texts]


def test_roles_follow_the_batch_and_untrusted_text_is_cached_apart() -> None:
    import asyncio

    screener = Screener(ScreeningCache(100), GuardMetrics(CollectorRegistry(), "test"))
    detector = RoleRecorder()

    async def run(texts: list[str], roles: tuple[str, ...]) -> None:
        ctx = ScanContext(Direction.INPUT, "limited", "chat", "r", roles)
        await screener.screen(texts, [detector], ctx, 5.0)

    asyncio.run(run(["system rules", "doc text", "question"], ("system", "tool", "user")))
    assert detector.batches[-1] == (("system rules", "doc text", "question"), (False, True, False))
    # Same texts again, but the document now arrives as a user turn: only it is screened again, as trusted.
    asyncio.run(run(["system rules", "doc text", "question"], ("system", "user", "user")))
    assert detector.batches[-1] == (("doc text",), (False,))
    # And as a tool result once more: the cached untrusted result answers, no new call.
    calls = len(detector.batches)
    asyncio.run(run(["doc text"], ("tool",)))
    assert len(detector.batches) == calls


def test_roles_outside_the_list_are_trusted() -> None:
    ctx = ScanContext(Direction.INPUT, "limited", roles=("tool",))
    assert ctx.untrusted(0) and not ctx.untrusted(1)
    assert not ScanContext(Direction.INPUT, "limited").untrusted(0)
