"""Regex / keyword rules from the policy: the site's own terms (code names, secrets, banned phrases).

Regexes are compiled when the policy is validated, so a broken pattern stops `guard policy check` and the
start-up, never a request. Keywords match case-insensitively on word boundaries ("api key" does not match
inside "rapi keyboard"). A finding's label is the rule's name and its span type the name in upper case, so
a redacted match reads `<INTERNAL_CODENAME>`.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from guard.detectors.base import DetectorResources
from guard.detectors.config import DetectorConfigBase
from guard.errors import DetectorError
from guard.types import Category, Finding, ScanContext, Span


class RuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    category: Category = Category.CUSTOM
    patterns: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    score: Annotated[float, Field(ge=0, le=1)] = 1.0

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for index, pattern in enumerate(value):
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"patterns[{index}] is not a valid regular expression ({exc.msg} at position {exc.pos}); "
                    "quote it in single quotes in YAML, e.g. '\\bAKIA[0-9A-Z]{16}\\b'"
                ) from None
            if compiled.fullmatch(""):
                raise ValueError(f"patterns[{index}] matches the empty string, so it would match everywhere")
        return value

    @field_validator("keywords")
    @classmethod
    def _non_blank(cls, value: list[str]) -> list[str]:
        for index, keyword in enumerate(value):
            if not keyword.strip():
                raise ValueError(f"keywords[{index}] is blank")
        return value

    @model_validator(mode="after")
    def _something_to_match(self) -> RuleConfig:
        if not self.patterns and not self.keywords:
            raise ValueError(
                f"rule '{self.name}' has neither patterns nor keywords, e.g. "
                "{name: codenames, keywords: [bluebird], patterns: ['PRJ-[0-9]{4}']}"
            )
        return self


class RulesConfig(DetectorConfigBase):
    kind: Literal["rules"]
    rules: list[RuleConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_rule_names(self) -> RulesConfig:
        names = [rule.name for rule in self.rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"rule names must be unique within a detector; repeated: {repeated}")
        return self

    def categories(self) -> frozenset[Category]:
        return frozenset(rule.category for rule in self.rules)


class _CompiledRule:
    __slots__ = ("config", "regexes")

    def __init__(self, config: RuleConfig) -> None:
        self.config = config
        regexes = [re.compile(p) for p in config.patterns]
        if config.keywords:
            # Longest first, so "api key" wins over "api" where both are listed.
            words = sorted(config.keywords, key=len, reverse=True)
            alternatives = "|".join(r"\s+".join(map(re.escape, w.split())) for w in words)
            regexes.append(re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE))
        self.regexes = tuple(regexes)


class RulesDetector:
    """The policy's regex and keyword rules as one detector. Holds compiled patterns only."""

    def __init__(self, config: RulesConfig) -> None:
        self.config = config
        self.name = config.name
        self.categories = config.categories()
        digest = hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]
        self.version = f"rules-{digest}"
        self._rules: tuple[_CompiledRule, ...] = ()
        self._resources: DetectorResources | None = None

    async def load(self, resources: DetectorResources) -> None:
        self._rules = tuple(_CompiledRule(rule) for rule in self.config.rules)
        self._resources = resources

    async def detect(self, texts: Sequence[str], ctx: ScanContext) -> Sequence[Sequence[Finding]]:
        if self._resources is None:
            raise DetectorError(f"detector '{self.name}' was used before load()")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._resources.executor, self._scan_all, list(texts))

    def _scan_all(self, texts: list[str]) -> list[list[Finding]]:
        return [self._scan_one(text) for text in texts]

    def _scan_one(self, text: str) -> list[Finding]:
        """Findings for one text, synchronously (the executor's side of `detect`)."""
        findings: list[Finding] = []
        for rule in self._rules:
            config = rule.config
            for regex in rule.regexes:
                for match in regex.finditer(text):
                    if match.end() == match.start():
                        continue
                    findings.append(
                        Finding(
                            detector=self.name,
                            detector_version=self.version,
                            category=config.category,
                            score=config.score,
                            span=Span(match.start(), match.end(), config.name.upper()),
                            label=config.name,
                            reason=f"rule '{config.name}' matched",
                        )
                    )
        return findings

    async def aclose(self) -> None:
        self._rules = ()
        self._resources = None
