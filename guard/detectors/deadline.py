"""Detector work that stops when its budget does (issue 15).

`asyncio.wait_for` gives up on a detector at its budget, but a thread already running CPU work cannot be
cancelled: a 1 MB prompt kept presidio and the encoder busy for about 45 s after its own 5 s budget, and
every benign request behind it timed out too. So long work is cut into bounded units (text segments,
slices of encoder windows), each its own executor job, and between units the detector checks the
deadline the `Screener` put in `ScanContext.deadline`. Once the budget is spent (or the waiting
coroutine was cancelled), at most the unit in progress still runs; the rest is never started. Units
queue behind other requests' jobs in the executor, so a small request waits for one unit of a large one,
not for all of it.
"""

from __future__ import annotations

import time

from guard.errors import DetectorError


class DeadlineExceededError(DetectorError):
    """The detector's budget ran out between two units of work; the Screener counts it as a timeout."""


def check(deadline: float | None) -> None:
    """Raise `DeadlineExceededError` once `time.monotonic()` has passed `deadline` (None: no deadline)."""
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceededError("detector budget exhausted")


def segments(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """Character ranges covering `text`, each at most `size` long, consecutive ones overlapping by at
    least `overlap` (so any span up to `overlap` characters lies whole inside one range). Cuts move back to
    whitespace when there is some in the last quarter of a range, so words are rarely split."""
    if overlap >= size:
        raise ValueError("overlap must be smaller than size")
    if len(text) <= size:
        return [(0, len(text))]
    out: list[tuple[int, int]] = []
    start = 0
    while True:
        end = min(start + size, len(text))
        if end < len(text):
            space = text.rfind(" ", start + size * 3 // 4, end)
            if space > start + overlap:
                end = space
        out.append((start, end))
        if end >= len(text):
            return out
        start = end - overlap
