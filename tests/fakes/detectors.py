"""Deterministic `Detector` implementations for tests, planted through the registry's `kind: plugin`.

`FaultDetector` is a real detector (the `Screener` calls it like any other) whose behaviour a policy's
`settings` choose:

    - {kind: plugin, name: faulty, factory: "tests.fakes.detectors:FaultDetector", reports: [pii],
       settings: {mode: raise}}

modes:
    ok     finds nothing
    find   one finding (score 1.0, span, label `MARKER`) per occurrence of `settings.marker` in a text
    raise  raises `RuntimeError` whose message carries `settings.secret` (tests check it never leaks)
    sleep  sleeps `settings.delay_s` seconds (past the policy's `detector_budget_s`), then finds nothing
    garbage  returns objects that are not findings (a broken plugin): the guard must fail closed

With `settings.when_file`, the fault applies only while that file exists, and with `settings.fault_on`,
only to batches where some text contains that string; otherwise the detector behaves as `find` when a
marker is set, else `ok`. So a test can break a detector in a running guard without a restart, or break it
for the model's answer but not for the prompt.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence

from guard.detectors.base import DetectorResources
from guard.detectors.registry import PluginConfig
from guard.types import Finding, ScanContext, Span

MODES = ("ok", "find", "raise", "sleep", "garbage")


class FaultDetector:
    """A detector that finds a marker, raises, or runs past its budget, as its settings say."""

    def __init__(self, config: PluginConfig) -> None:
        settings = config.settings
        mode = str(settings.get("mode", "ok"))
        if mode not in MODES:
            raise ValueError(f"FaultDetector mode must be one of {MODES}, not {mode!r}")
        self.name = config.name
        self.version = f"fault-{mode}-1"
        self.categories = frozenset(config.reports)
        self._category = config.reports[0]
        self._mode = mode
        self._marker = str(settings.get("marker", ""))
        self._secret = str(settings.get("secret", "internal-detail"))
        self._delay_s = float(settings.get("delay_s", 30.0))
        when_file = settings.get("when_file")
        self._when_file = str(when_file) if when_file else None
        self._fault_on = str(settings.get("fault_on", ""))
        self.calls = 0

    async def load(self, resources: DetectorResources) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def _active_mode(self, texts: Sequence[str]) -> str:
        quiet = "find" if self._marker else "ok"
        if self._when_file is not None and not os.path.exists(self._when_file):
            return quiet
        if self._fault_on and not any(self._fault_on in text for text in texts):
            return quiet
        return self._mode

    async def detect(self, texts: Sequence[str], ctx: ScanContext) -> Sequence[Sequence[Finding]]:
        self.calls += 1
        mode = self._active_mode(texts)
        if mode == "raise":
            # The message carries a secret: the guard must count the failure, never echo this text.
            raise RuntimeError(f"fault detector exploded: {self._secret}")
        if mode == "sleep":
            await asyncio.sleep(self._delay_s)
            return [() for _ in texts]
        if mode == "garbage":
            return [[f"not a finding: {self._secret}"] for _ in texts]  # type: ignore[list-item]
        if mode == "find" and self._marker:
            return [self._find(text) for text in texts]
        return [() for _ in texts]

    def _find(self, text: str) -> tuple[Finding, ...]:
        found = []
        start = text.find(self._marker)
        while start >= 0:
            end = start + len(self._marker)
            found.append(
                Finding(
                    detector=self.name,
                    detector_version=self.version,
                    category=self._category,
                    score=1.0,
                    span=Span(start, end, "MARKER"),
                    label="MARKER",
                    reason="planted test marker",
                )
            )
            start = text.find(self._marker, end)
        return tuple(found)

