"""The `Detector` extension point: anything that turns texts into findings.

Contract:
- `__init__` is cheap (it only keeps its validated config). Heavy work (loading models, compiling
  recognizers) happens in `load()`, which the app awaits once before it reports ready.
- `detect(texts, ctx)` is called by the `Screener` with a batch of texts that are not in the screening
  cache; it returns one sequence of findings per text, in the same order. It must not block the event
  loop: CPU work goes to `resources.executor` (a bounded thread pool shared by all detectors).
- `detect` raises on failure; the `Screener` turns the exception or a blown time budget into a
  `DetectorFailure` and the policy decides what that means. A detector never swallows its own errors.
- `name` is the detector's id from the policy (a metrics label, so bounded); `version` changes whenever
  its model, data or settings change, so cached results of an older version are never reused.
- Findings never carry matched text, only offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from guard.types import Category, Finding, ScanContext

if TYPE_CHECKING:
    from guard.detectors.encoder import EncoderPool


def _new_encoder_pool() -> EncoderPool:
    from guard.detectors.encoder import EncoderPool  # numpy only; torch loads in the encoder's load()

    return EncoderPool()


@dataclass(frozen=True, slots=True)
class DetectorResources:
    """What the app lends every detector: the inference executor and its thread budget, and the pool of
    sentence encoders, so detectors built with the same resources share one encoder per model."""

    executor: Executor
    torch_threads: int
    encoders: EncoderPool = field(default_factory=_new_encoder_pool)


@runtime_checkable
class Detector(Protocol):
    name: str
    version: str
    categories: frozenset[Category]

    async def load(self, resources: DetectorResources) -> None:
        """Load models and warm them up. Called once, before the guard reports ready."""
        ...

    async def detect(self, texts: Sequence[str], ctx: ScanContext) -> Sequence[Sequence[Finding]]:
        """Screen a batch of texts; one sequence of findings per text, same order."""
        ...

    async def aclose(self) -> None:
        """Release what `load` took. Called once at shutdown."""
        ...
