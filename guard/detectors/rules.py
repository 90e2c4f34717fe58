"""Regex / keyword rules from the policy. OWNER: PII helper (implementation to be written)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from guard.detectors.config import DetectorConfigBase
from guard.types import Category


class RuleConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    category: Category = Category.CUSTOM
    patterns: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    score: Annotated[float, Field(ge=0, le=1)] = 1.0


class RulesConfig(DetectorConfigBase):
    kind: Literal["rules"]
    rules: list[RuleConfig]

    def categories(self) -> frozenset[Category]:
        return frozenset(rule.category for rule in self.rules)
