"""Runs a set of detectors over a batch of texts: cached, concurrent, each within its time budget.

Texts already screened by a detector of the same version (a system prompt, the earlier turns of a chat
that the client re-sends every turn) come from a bounded cache keyed by content hash, so the cost of a turn
grows with its new text, not with the conversation. A detector that raises or runs past its budget yields
a `DetectorFailure`, never an empty (allowing) result.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from dataclasses import replace
from collections import OrderedDict
from collections.abc import Sequence

from guard.detectors.base import Detector
from guard.detectors.deadline import DeadlineExceededError
from guard.detectors.percent import ViewedBatch
from guard.metrics import GuardMetrics
from guard.tracing import tracer
from guard.types import DetectorFailure, FailureReason, Finding, ScanContext, ScanResult

log = logging.getLogger(__name__)

_CacheKey = tuple[str, str, bytes]


class ScreeningCache:
    """LRU of findings keyed by (detector, detector version, text digest). Holds no text."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[_CacheKey, tuple[Finding, ...]] = OrderedDict()

    @staticmethod
    def digest(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, key: _CacheKey) -> tuple[Finding, ...] | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: _CacheKey, findings: tuple[Finding, ...]) -> None:
        if self._max_entries <= 0:
            return
        self._entries[key] = findings
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class Screener:
    """Screens texts with the detectors a policy names. Owns nothing but the cache; detectors are lent."""

    def __init__(self, cache: ScreeningCache, metrics: GuardMetrics) -> None:
        self._cache = cache
        self._metrics = metrics

    async def screen(
        self,
        texts: Sequence[str],
        detectors: Sequence[Detector],
        ctx: ScanContext,
        budget_s: float,
    ) -> ScanResult:
        """Findings per text. A text with percent-escapes is also screened decoded, its view's findings
        mapped back to raw offsets (`guard.detectors.percent`: data hidden in a URL, issue 9)."""
        batch = ViewedBatch.of(texts)
        return batch.fold(await self._screen(batch.texts, detectors, ctx, budget_s))

    async def _screen(
        self,
        texts: Sequence[str],
        detectors: Sequence[Detector],
        ctx: ScanContext,
        budget_s: float,
    ) -> ScanResult:
        if not texts or not detectors:
            return ScanResult(findings=tuple(() for _ in texts))
        # Untrusted content is screened differently (issue 10), so its findings are cached apart.
        digests = [ScreeningCache.digest(("\x00untrusted\x00" + t) if ctx.untrusted(i) else t) for i, t in enumerate(texts)]
        outcomes = await asyncio.gather(
            *(self._run_one(d, texts, digests, ctx, budget_s) for d in detectors)
        )
        per_text: list[list[Finding]] = [[] for _ in texts]
        failures: list[DetectorFailure] = []
        hits = 0
        for outcome in outcomes:
            if isinstance(outcome, DetectorFailure):
                failures.append(outcome)
                continue
            found, detector_hits = outcome
            hits += detector_hits
            for index, findings in enumerate(found):
                per_text[index].extend(findings)
        return ScanResult(
            findings=tuple(tuple(f) for f in per_text), failures=tuple(failures), cache_hits=hits
        )

    async def _run_one(
        self,
        detector: Detector,
        texts: Sequence[str],
        digests: Sequence[bytes],
        ctx: ScanContext,
        budget_s: float,
    ) -> tuple[list[tuple[Finding, ...]], int] | DetectorFailure:
        results: list[tuple[Finding, ...] | None] = []
        missing: list[int] = []
        for index, digest in enumerate(digests):
            cached = self._cache.get((detector.name, detector.version, digest))
            results.append(cached)
            if cached is None:
                missing.append(index)
        hits = len(texts) - len(missing)
        self._metrics.observe_cache(detector.name, hits=hits, misses=len(missing))
        if missing:
            # Identical texts in one batch are screened once.
            unique: dict[bytes, int] = {}
            for index in missing:
                unique.setdefault(digests[index], index)
            batch = [texts[i] for i in unique.values()]
            if ctx.roles:  # the detector sees roles by its batch's positions
                ctx = replace(ctx, roles=tuple(ctx.roles[i] if i < len(ctx.roles) else "" for i in unique.values()))
            started = time.perf_counter()
            timed = dataclasses.replace(ctx, deadline=time.monotonic() + budget_s)
            try:
                with tracer.start_as_current_span(
                    "guard.detector", attributes={"guard.detector": detector.name, "guard.texts": len(batch)}
                ):
                    found = await asyncio.wait_for(detector.detect(batch, timed), timeout=budget_s)
            except (TimeoutError, DeadlineExceededError):
                self._metrics.observe_detector_failure(detector.name, FailureReason.TIMEOUT)
                log.warning(
                    "detector timed out",
                    extra={"detector": detector.name, "request_id": ctx.request_id, "budget_s": budget_s},
                )
                return DetectorFailure(detector.name, FailureReason.TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - turned into a fail-closed outcome, never swallowed
                self._metrics.observe_detector_failure(detector.name, FailureReason.ERROR)
                # exc_info: the JSON log formatter keeps the exception's type and stack frames, never its
                # message (which may quote text), so an operator can see where the detector failed.
                log.warning(
                    "detector failed",
                    exc_info=exc,
                    extra={
                        "detector": detector.name,
                        "request_id": ctx.request_id,
                        "error_type": type(exc).__name__,
                    },
                )
                return DetectorFailure(detector.name, FailureReason.ERROR)
            self._metrics.observe_detector(detector.name, time.perf_counter() - started, len(batch))
            if len(found) != len(batch):
                self._metrics.observe_detector_failure(detector.name, FailureReason.ERROR)
                log.error("detector returned a result per text count mismatch", extra={"detector": detector.name})
                return DetectorFailure(detector.name, FailureReason.ERROR)
            by_digest: dict[bytes, tuple[Finding, ...]] = {}
            for digest, batch_findings in zip(unique, found, strict=True):
                frozen = tuple(batch_findings)
                by_digest[digest] = frozen
                self._cache.put((detector.name, detector.version, digest), frozen)
            for index in missing:
                results[index] = by_digest[digests[index]]
        screened = [r if r is not None else () for r in results]
        for text_findings in screened:
            for finding in text_findings:
                self._metrics.observe_finding(finding.detector, finding.category)
        return screened, hits
