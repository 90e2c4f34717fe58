"""The policy file's schema (pydantic v2): validated once at load, frozen, unknown keys refused.

A policy says which detectors run, how each route's bodies are read (codec), which risk tier a request
belongs to, and, per tier, direction, category and severity band, what to do. The shape in YAML:

    name: default
    version: "2026.11.1"
    detectors:
      - {kind: presidio_pii, name: pii}
    default_tier: limited
    routes:
      - {name: chat, path: /v1/chat/completions, codec: {kind: openai_chat}}
    tiers:
      limited:
        input:
          pii:
            medium: {min_score: 0.5, action: redact}
            by_label:
              CREDIT_CARD: {medium: {min_score: 0.5, action: review}}
        output:
          pii:
            medium: {min_score: 0.5, action: redact}
"""

from __future__ import annotations

import difflib
import ipaddress
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from guard.detectors.registry import DetectorConfig
from guard.policy.limits import AdmissionLimits, AnswerLimits
from guard.types import Action, Band, Category, Direction

Score = Annotated[float, Field(ge=0.0, le=1.0)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]

# The risk order of the EU AI Act's tier names, used when a policy gives no `tier_order`.
DEFAULT_TIER_ORDER = ("minimal", "limited", "high", "unacceptable")

# Categories whose findings carry spans, so `redact` can act on them.
SPAN_CATEGORIES = frozenset({Category.PII, Category.CUSTOM})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BandRule(Strict):
    min_score: Score
    action: Action


class BandTable(Strict):
    """Thresholds and actions for one category (or one label within it), by severity band."""

    low: BandRule | None = None
    medium: BandRule | None = None
    high: BandRule | None = None

    @model_validator(mode="after")
    def _ascending(self) -> BandTable:
        previous: tuple[str, float] | None = None
        for band in Band:
            rule = getattr(self, band.value)
            if rule is None:
                continue
            if previous is not None and rule.min_score <= previous[1]:
                raise ValueError(
                    f"band '{band.value}' min_score {rule.min_score} must be above band "
                    f"'{previous[0]}' min_score {previous[1]}; e.g. "
                    "{low: {min_score: 0.3, ...}, medium: {min_score: 0.6, ...}, high: {min_score: 0.9, ...}}"
                )
            previous = (band.value, rule.min_score)
        return self

    def bands(self) -> list[tuple[Band, BandRule]]:
        """Bands present, strongest first."""
        out = []
        for band in (Band.HIGH, Band.MEDIUM, Band.LOW):
            rule = getattr(self, band.value)
            if rule is not None:
                out.append((band, rule))
        return out

    def actions(self) -> set[Action]:
        return {rule.action for _, rule in self.bands()}


class CategoryTable(BandTable):
    """A category's bands, with optional overrides for specific labels (entity types, techniques)."""

    by_label: dict[str, BandTable] = Field(default_factory=dict)

    def table_for(self, label: str) -> BandTable:
        return self.by_label.get(label, self)

    def all_actions(self) -> set[Action]:
        actions = self.actions()
        for table in self.by_label.values():
            actions |= table.actions()
        return actions


class StreamSettings(Strict):
    """Hold-back window for streamed output: text is screened in steps of `window_chars`, and the last
    `overlap_chars` of each step stay held until the next step, so a span that straddles chunks is seen
    whole before any of it is released."""

    window_chars: Annotated[int, Field(ge=0, le=65536)] = 96
    overlap_chars: Annotated[int, Field(ge=0, le=4096)] = 48


class ReviewPolicy(Strict):
    timeout_s: Annotated[float, Field(gt=0, le=86400)] = 30.0
    on_timeout: Literal[Action.BLOCK, Action.ALLOW] = Action.BLOCK
    deferred: bool = False


class TierPolicy(Strict):
    on_detector_error: Literal[Action.BLOCK, Action.ALLOW, Action.REVIEW] = Action.BLOCK
    stream: StreamSettings = StreamSettings()
    review: ReviewPolicy = ReviewPolicy()
    input: dict[Category, CategoryTable] = Field(default_factory=dict)
    output: dict[Category, CategoryTable] = Field(default_factory=dict)
    answer: AnswerLimits = AnswerLimits()  # caps on a streamed answer (guard.policy.limits)

    def table(self, direction: Direction) -> dict[Category, CategoryTable]:
        return self.input if direction is Direction.INPUT else self.output

    @model_validator(mode="after")
    def _redact_needs_spans(self) -> TierPolicy:
        for direction in Direction:
            for category, table in self.table(direction).items():
                if Action.REDACT in table.all_actions() and category not in SPAN_CATEGORIES:
                    raise ValueError(
                        f"{direction.value}.{category.value}: 'redact' needs findings with spans, which only "
                        f"{sorted(c.value for c in SPAN_CATEGORIES)} have; use block, review or log"
                    )
        return self


class CodecConfig(Strict):
    kind: Literal[
        "openai_chat", "openai_completions", "json", "text", "openai_responses", "anthropic_messages",
        "openai_embeddings", "ollama_chat", "ollama_generate",
    ]
    request_paths: list[str] = Field(default_factory=list)
    response_paths: list[str] = Field(default_factory=list)
    # openai_embeddings only: token-id arrays cannot be screened, so they are refused (400) unless allowed.
    allow_token_input: bool = False

    @model_validator(mode="after")
    def _paths_for_json(self) -> CodecConfig:
        if self.kind == "json" and not (self.request_paths or self.response_paths):
            raise ValueError(
                "codec kind 'json' needs field paths, e.g. "
                "{kind: json, request_paths: ['$.prompt', '$.messages[*].text'], response_paths: ['$.output']}"
            )
        if self.kind != "json" and (self.request_paths or self.response_paths):
            raise ValueError(f"codec kind '{self.kind}' takes no field paths; only kind 'json' does")
        if self.allow_token_input and self.kind != "openai_embeddings":
            raise ValueError("allow_token_input applies only to codec kind 'openai_embeddings'")
        return self


class Route(Strict):
    """A path (literal segments, `{param}` for one segment of any value) the guard screens with `codec`,
    or, with `pass: true`, forwards unscreened (counted in `guard_unscreened_requests_total`). `methods`
    limits the route to those methods; a request with another method matches the next route or none."""

    name: Name
    path: Annotated[str, Field(pattern=r"^(/([A-Za-z0-9._~!$&'()*+,=:@-]+|\{[a-z][a-z0-9_]*\}))+/?$|^/$")]
    codec: CodecConfig | None = None
    methods: list[Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]] | None = None
    pass_: bool = Field(False, alias="pass")
    tier: str | None = None

    @model_validator(mode="after")
    def _codec_or_pass(self) -> Route:
        if self.pass_ and self.codec is not None:
            raise ValueError(f"route '{self.name}' passes unscreened (pass: true), so it takes no codec")
        if not self.pass_ and self.codec is None:
            raise ValueError(
                f"route '{self.name}' needs a codec, e.g. codec: {{kind: openai_chat}}, or `pass: true` to "
                "forward it unscreened"
            )
        return self


class TierHeader(Strict):
    """Where a platform marks a request's tier. Honoured only when the TCP peer is in `trusted_sources`
    (the platform's ingress, which sets the header and strips the caller's); from anyone else, loopback
    included unless listed, the header is ignored. Empty (the shipped policies): the header is never
    honoured. A route's `tier` is a floor the header cannot go below (see `PolicyFile.tier_order`)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")] = "x-guard-tier"
    trusted_sources: list[str] = Field(default_factory=list)

    @field_validator("trusted_sources")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"'{cidr}' is not an address or CIDR block, e.g. '127.0.0.1/32'") from None
        return value


class Limits(Strict):
    max_body_bytes: Annotated[int, Field(gt=0)] = 1_048_576
    max_json_depth: Annotated[int, Field(gt=0, le=1000)] = 64
    max_texts: Annotated[int, Field(gt=0)] = 10_000
    detector_budget_s: Annotated[float, Field(gt=0, le=120)] = 5.0
    admission: AdmissionLimits = AdmissionLimits()  # concurrent screening per replica (guard.policy.limits)

    @model_validator(mode="after")
    def _room_beside_the_largest(self) -> Limits:
        if self.admission.max_chars <= self.max_body_bytes:
            raise ValueError(
                f"admission.max_chars ({self.admission.max_chars}) must be above max_body_bytes "
                f"({self.max_body_bytes}), so one prompt of the largest accepted size leaves room for the "
                f"rest; e.g. admission: {{max_chars: {self.max_body_bytes * 3 // 2}}}"
            )
        return self


class PolicyFile(Strict):
    name: Name
    version: Annotated[str, Field(min_length=1, max_length=64)]
    mode: Literal["enforce", "shadow"] = "enforce"
    detectors: list[DetectorConfig] = Field(default_factory=list)
    default_tier: str
    tier_header: TierHeader | None = None
    routes: list[Route] = Field(default_factory=list)
    # What a request to a path no route names gets: `pass_bodiless` (default) forwards bodiless GET, HEAD
    # and OPTIONS unscreened (counted) and refuses anything else with 404; `block` refuses every one;
    # `pass` (the old default, still parsed) forwards all of them unscreened, counted under `other`.
    unknown_routes: Literal["pass_bodiless", "block", "pass"] = "pass_bodiless"
    # Tier names from lowest to highest risk: a route's tier is a floor the tier header cannot go below.
    # When omitted, the tiers must all be among the well-known names, ordered as in `DEFAULT_TIER_ORDER`.
    tier_order: list[Name] | None = None
    limits: Limits = Limits()
    refusal_text: str = "I can't help with that request."
    tiers: dict[Name, TierPolicy]

    def tier_rank(self, tier: str) -> int:
        """Position of `tier` in the risk order (higher is stricter)."""
        order = self.tier_order if self.tier_order is not None else [
            t for t in DEFAULT_TIER_ORDER if t in self.tiers
        ]
        return order.index(tier)

    @model_validator(mode="after")
    def _tier_order(self) -> PolicyFile:
        if self.tier_order is None:
            unknown = sorted(set(self.tiers) - set(DEFAULT_TIER_ORDER))
            if unknown and len(self.tiers) > 1 and self.tier_header is not None:
                raise ValueError(
                    f"tiers: {unknown} have no place in the default order {list(DEFAULT_TIER_ORDER)}; add "
                    f"tier_order listing every tier from lowest to highest risk, e.g. tier_order: {sorted(self.tiers)}"
                )
            return self
        if sorted(self.tier_order) != sorted(self.tiers) or len(set(self.tier_order)) != len(self.tier_order):
            raise ValueError(
                f"tier_order: must list every tier exactly once, lowest risk first; tiers are {sorted(self.tiers)}"
            )
        return self

    def _pii_labels_are_entities(self) -> None:
        """A `by_label` override under `pii` must name an entity a PII detector looks for: a misspelt one
        (`PHONE_NUMBR`) would silently leave that entity on the category's bands."""
        entities: set[str] = set()
        for detector in self.detectors:
            analyzed = getattr(detector, "analyzed_entities", None)
            if Category.PII in detector.categories():
                if analyzed is None:
                    return  # a plugin or other detector whose labels are not declared: nothing to check against
                entities.update(analyzed())
        for tier_name, tier in self.tiers.items():
            for direction in Direction:
                table = tier.table(direction).get(Category.PII)
                for label in table.by_label if table is not None else {}:
                    if label not in entities:
                        close = difflib.get_close_matches(label, sorted(entities), n=1)
                        hint = f"; did you mean {close[0]}?" if close else ""
                        raise ValueError(
                            f"tiers.{tier_name}.{direction.value}.pii.by_label: '{label}' is not an entity any "
                            f"PII detector looks for (its `entities`: {sorted(entities)}){hint}"
                        )

    @model_validator(mode="after")
    def _references(self) -> PolicyFile:
        if self.default_tier not in self.tiers:
            raise ValueError(
                f"default_tier '{self.default_tier}' is not one of the tiers {sorted(self.tiers)}"
            )
        for index, route in enumerate(self.routes):
            if route.tier is not None and route.tier not in self.tiers:
                raise ValueError(
                    f"routes[{index}].tier: route '{route.name}' names tier '{route.tier}', "
                    f"not one of {sorted(self.tiers)}"
                )
        names = [d.name for d in self.detectors]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"detector names must be unique; repeated: {duplicates}")
        route_names = [r.name for r in self.routes]
        if len(set(route_names)) != len(route_names):
            raise ValueError("route names must be unique")
        self._pii_labels_are_entities()
        covered = {c for d in self.detectors for c in d.categories()}
        for tier_name, tier in self.tiers.items():
            for direction in Direction:
                for category in tier.table(direction):
                    if category not in covered:
                        raise ValueError(
                            f"tiers.{tier_name}.{direction.value}.{category.value}: no detector in "
                            f"`detectors` finds '{category.value}'; add one or remove the row"
                        )
        return self
