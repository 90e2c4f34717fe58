"""Bounded streamed answers (issue 15): a stream ends at its tier's caps, and what the guard keeps of it
for the audit record is a digest that grows by nothing.

Before: a 400 MB stream was kept whole for the audit HMAC (RSS +390 MiB), a review-tier stream was held
whole and screened in one call (50 MB → 4.3 GB), and streams had no time limit. Now:

- `StreamCaps` watches one stream against `tiers.<tier>.answer` (`guard.policy.limits.AnswerLimits`):
  upstream bytes (`max_bytes`), time since the answer began (`max_duration_s`, checked as chunks arrive;
  an upstream that goes silent is ended by `--upstream-read-timeout`), and, where the tier holds answers
  whole for review, held text (`max_held_chars`). At a cap the stream ends with the API's refusal events
  (`finish_reason: "content_filter"`, then the end marker) and the cap is counted in
  `guard_answer_caps_total{cap}`; nothing past the cap is released, and nothing held is released unscreened.
- `AnswerRecord` takes each choice's text as it arrives and keeps only an incremental keyed digest
  (`hmac` `update`), equal to the HMAC the audit sink would compute over the whole text, when the sink
  offers one (`guard.audit.base.TextDigestSource`); for other sinks it keeps the text as before (bounded
  now by `max_bytes`).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

from guard.policy.limits import AnswerLimits

BYTES = "bytes"
DURATION = "duration"
HELD_CHARS = "held_chars"

CAP_MESSAGES = {
    BYTES: "The answer was cut off: it reached the guard's size limit for streamed answers.",
    DURATION: "The answer was cut off: it reached the guard's time limit for streamed answers.",
    HELD_CHARS: "The answer was refused: it is longer than the guard can hold for review.",
}


class StreamCaps:
    """One stream's running totals against its tier's caps. `exceeded` is asked before each upstream chunk
    is screened; `held_exceeded` after, with the text still held back."""

    def __init__(self, limits: AnswerLimits, holds_whole: bool) -> None:
        self._limits = limits
        self._holds_whole = holds_whole
        self._started = time.monotonic()
        self.received_bytes = 0

    def exceeded(self, chunk: bytes) -> str | None:
        self.received_bytes += len(chunk)
        if self.received_bytes > self._limits.max_bytes:
            return BYTES
        if time.monotonic() - self._started > self._limits.max_duration_s:
            return DURATION
        return None

    def held_exceeded(self, held_chars: int) -> str | None:
        if self._holds_whole and held_chars > self._limits.max_held_chars:
            return HELD_CHARS
        return None


DigestFactory = Callable[[], "hmac.HMAC | None"]


class AnswerRecord:
    """What the audit record needs of a streamed answer, per choice, without keeping the answer.

    With a `digest_factory` (the audit sink's keyed HMAC), only digests are kept; `hmacs()` returns them
    (an empty tuple when the sink has no key, as `text_hmacs` does). Without one, texts are kept whole
    and `hmacs()` is None: the sink computes them from `texts()`."""

    def __init__(self, digest_factory: DigestFactory | None) -> None:
        self._factory = digest_factory
        self._digests: dict[int, hmac.HMAC | None] = {}
        self._texts: dict[int, list[str]] = {}

    def add(self, choice: int, text: str) -> None:
        if self._factory is None:
            self._texts.setdefault(choice, []).append(text)
            return
        if choice not in self._digests:
            self._digests[choice] = self._factory()
        digest = self._digests[choice]
        if digest is not None:
            digest.update(text.encode("utf-8", "surrogatepass"))

    def texts(self) -> tuple[str, ...]:
        return tuple("".join(parts) for _, parts in sorted(self._texts.items()))

    def hmacs(self) -> tuple[str, ...] | None:
        if self._factory is None:
            return None
        return tuple(d.hexdigest() for _, d in sorted(self._digests.items()) if d is not None)
