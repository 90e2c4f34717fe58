"""Similarity to a database of debunked claims. OWNER: classifier helper (to be written)."""

from __future__ import annotations

from typing import Literal

from guard.detectors.config import DetectorConfigBase
from guard.types import Category


class ClaimsConfig(DetectorConfigBase):
    kind: Literal["claims"]

    def categories(self) -> frozenset[Category]:
        return frozenset({Category.DISINFORMATION})
