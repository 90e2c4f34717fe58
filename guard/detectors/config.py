"""What every detector's config shares. Each detector kind's own config model sits beside its code."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from guard.types import Category

DetectorName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class DetectorConfigBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: DetectorName

    def categories(self) -> frozenset[Category]:
        """The categories this detector can report, so the policy can check its table against them."""
        raise NotImplementedError
