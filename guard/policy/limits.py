"""Policy settings that bound the guard's own work: how much screening one replica runs at once
(`limits.admission`) and how large and long a streamed answer may grow (`tiers.<tier>.answer`).

Both exist so that overload and hostile sizes end as an honest, API-shaped "try again later" or a cleanly
ended stream, never as a policy verdict and never as unbounded memory (issues 9 and 15):

    limits:
      admission: {max_concurrent: 16, max_chars: 1572864, max_queue: 128, queue_timeout_s: 10, retry_after_s: 2}
    tiers:
      limited:
        answer: {max_bytes: 16777216, max_duration_s: 600, max_held_chars: 262144}
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AdmissionLimits(_Strict):
    """Admission control for screening, per replica (`guard.proxy.admission`).

    A screening call (one message's texts, either direction) weighs its characters. At most
    `max_concurrent` calls and `max_chars` characters are screened at once; a prompt that does not fit
    waits in a queue of at most `max_queue` prompts for at most `queue_timeout_s`, then is shed: 429 when
    the queue is full, 503 when the wait ran out, both with `Retry-After: retry_after_s`. The detector
    budget starts once a call is admitted, so time in the queue never becomes a detector timeout (and so
    never a `content_filter` verdict). Answers already on their way back are admitted first and never shed.
    """

    # Defaults measured on 2 cores with the default policy (docs/reliability.md, "Overload"): more
    # calls at once add no throughput, only queueing inside the detectors' executor, which the budget sees.
    max_concurrent: Annotated[int, Field(gt=0, le=4096)] = 16
    # One prompt of the largest accepted size (1 MiB of body, so at most as many characters) plus room
    # for the small ones, so that one large prompt slows only itself (the policy validator checks it).
    max_chars: Annotated[int, Field(gt=0)] = 1_572_864
    max_queue: Annotated[int, Field(ge=0, le=100_000)] = 128
    queue_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    retry_after_s: Annotated[int, Field(gt=0, le=3600)] = 2


class AnswerLimits(_Strict):
    """Caps on one streamed answer, per tier (`guard.proxy.answer_caps`). A stream that reaches
    `max_bytes` of upstream body or runs `max_duration_s` ends with the refusal events of its API
    (`finish_reason: "content_filter"`, then the end marker); what was screened before the cap has been
    released, nothing after it is. Where the tier holds an answer whole for review, more than
    `max_held_chars` of held text is refused the same way instead of being held."""

    max_bytes: Annotated[int, Field(gt=0)] = 16 * 1024 * 1024
    max_duration_s: Annotated[float, Field(gt=0, le=86_400)] = 600.0
    max_held_chars: Annotated[int, Field(gt=0)] = 262_144
