"""Classifier heads over one shared sentence encoder. OWNER: classifier helper (to be written)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from guard.detectors.config import DetectorConfigBase
from guard.types import Category


class ClassifierConfig(DetectorConfigBase):
    kind: Literal["classifier"]
    heads: list[str] = Field(min_length=1)

    def categories(self) -> frozenset[Category]:
        raise NotImplementedError
