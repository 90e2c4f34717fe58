"""Value types passed between the pipeline's stages: detectors → policy → action.

Everything here is a frozen dataclass or a closed enum, so a stage can hand its result to the next (and to
the audit log, metrics and the review queue) without anyone mutating it on the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Category(str, Enum):
    """What a finding is about. Closed: metrics labels and policy tables are keyed by it."""

    PII = "pii"
    PROMPT_INJECTION = "prompt_injection"
    DISINFORMATION = "disinformation"
    MANIPULATION = "manipulation"
    # Findings of policy-defined `rules` (regex / keyword lists) that are not one of the above.
    CUSTOM = "custom"


class Direction(str, Enum):
    """Which way the text flows: a prompt to the model, or the model's output back to the caller."""

    INPUT = "input"
    OUTPUT = "output"


class Action(str, Enum):
    """What the policy does with a text. Ordered by strength: a decision takes the strongest triggered one."""

    ALLOW = "allow"
    LOG = "log"  # shadow mode: counted as "would have been", nothing changed
    REDACT = "redact"
    REVIEW = "review"
    BLOCK = "block"

    @property
    def strength(self) -> int:
        return _ACTION_STRENGTH[self]


_ACTION_STRENGTH = {
    Action.ALLOW: 0,
    Action.LOG: 1,
    Action.REDACT: 2,
    Action.REVIEW: 3,
    Action.BLOCK: 4,
}


class Verdict(str, Enum):
    """What happened to the message, as callers see it in `x-guard-decision`."""

    ALLOW = "allow"
    REDACT = "redact"
    REVIEW = "review"
    BLOCK = "block"


class Band(str, Enum):
    """Severity band of a finding, from the policy's per-category score thresholds."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class FailureReason(str, Enum):
    """Why a detector produced no findings for a text."""

    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class Span:
    """Character offsets into the screened text (end exclusive) and what lies there."""

    start: int
    end: int
    entity_type: str


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a detector saw in one text.

    `label` names the specific kind within the category where the detector knows it (an entity type, a
    propaganda technique, the id of a matched debunked claim, a rule name). `reason` is for reviewers and is
    never logged at INFO: it must not quote personal data.
    """

    detector: str
    detector_version: str
    category: Category
    score: float  # 0..1
    span: Span | None = None
    label: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class DetectorFailure:
    """A detector that could not screen: the policy's `on_detector_error` decides what that means."""

    detector: str
    reason: FailureReason


@dataclass(frozen=True, slots=True)
class ScanContext:
    """What a detector and the policy may know about the message besides its text."""

    direction: Direction
    tier: str
    route: str = ""  # the policy's route name, never the raw path
    request_id: str = ""
    # Per text, the slot role the codec read it from ("user", "system", "tool", ...; "" unknown). Issue 10:
    # tool results and retrieved documents are untrusted content and screened as such (`untrusted`).
    roles: tuple[str, ...] = ()
    # time.monotonic() at which this call's detector budget ends (set by the Screener): long detector
    # work stops between its units of work once it has passed (guard.detectors.deadline).
    deadline: float | None = None

    def untrusted(self, index: int) -> bool:
        """Whether text `index` came from content the caller did not write (a tool result, a document)."""
        return index < len(self.roles) and self.roles[index] in UNTRUSTED_ROLES


# Slot roles whose text comes from tools, retrieval or third parties rather than the caller: an instruction
# there is an indirect injection however it is phrased.
UNTRUSTED_ROLES = frozenset({"tool", "function", "tool_description", "document", "retrieved"})


@dataclass(frozen=True, slots=True)
class ScanResult:
    """Findings for a batch of texts (one tuple per text, same order) and the detectors that failed."""

    findings: tuple[tuple[Finding, ...], ...]
    failures: tuple[DetectorFailure, ...] = ()
    cache_hits: int = 0


@dataclass(frozen=True, slots=True)
class Trigger:
    """A finding that the policy acted on, with the band and threshold that made it count."""

    finding: Finding
    text_index: int
    band: Band
    threshold: float
    action: Action


@dataclass(frozen=True, slots=True)
class ReviewSettings:
    """How long a `review` holds the message, and what happens if nobody decides in time."""

    timeout_s: float
    on_timeout: Action
    deferred: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer for one message in one direction.

    `action` is what is enforced. In shadow mode (or where the table says `log`), `would_have_been` holds
    the action that an enforcing policy would have taken, for metrics and audit.
    """

    action: Action
    direction: Direction
    tier: str
    policy_version: str
    triggers: tuple[Trigger, ...] = ()
    findings: tuple[Finding, ...] = ()
    failures: tuple[DetectorFailure, ...] = ()
    would_have_been: Action | None = None
    review: ReviewSettings | None = None
    categories: tuple[Category, ...] = field(default=())

    @property
    def verdict(self) -> Verdict:
        if self.action is Action.BLOCK:
            return Verdict.BLOCK
        if self.action is Action.REVIEW:
            return Verdict.REVIEW
        if self.action is Action.REDACT:
            return Verdict.REDACT
        return Verdict.ALLOW
