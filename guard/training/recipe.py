"""A head's training recipe (`models/<name>/recipe.yaml`): which rows, which split, which settings.

`guard train --recipe models/<name>/recipe.yaml` rebuilds the shipped head from the repository's
`data/training/` copies; the same fields exist as command-line flags for ad-hoc heads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from guard.detectors.encoder import EncoderSpec
from guard.errors import ConfigError
from guard.training.lexical import LexicalSpec
from guard.types import Category


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSource(Strict):
    path: Path
    licence: str = ""


class LexicalRecipe(Strict):
    """The lexical model fused with the embedding head (`lexical.py`); binary heads only."""

    spec: LexicalSpec = LexicalSpec()
    c: Annotated[float, Field(gt=0)] = 100.0  # inverse L2 strength
    # strata: every (dataset, label) stratum weighs the same within its label; balanced: by label only
    weighting: Literal["strata", "balanced"] = "strata"


class Recipe(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    category: Category
    # binary: classes [none, <name>]; techniques: [none, <each technique in the data>]
    mode: Literal["binary", "techniques"] = "binary"
    summary: str = ""
    known_misses: list[str] = Field(default_factory=list)
    data: list[DataSource] = Field(min_length=1)
    # Not trained on (licence): reported separately in the card where the files exist.
    evaluate_only: list[DataSource] = Field(default_factory=list)
    technique_names: dict[str, str] = Field(default_factory=dict)  # raw technique -> class name
    seed: int = 13
    validation_fraction: Annotated[float, Field(gt=0, lt=0.5)] = 0.2
    near_duplicate_cosine: Annotated[float, Field(gt=0.5, le=1.0)] = 0.92
    target_fpr: Annotated[float, Field(gt=0, lt=0.5)] = 0.01
    folds: Annotated[int, Field(ge=2, le=10)] = 5
    hidden: Annotated[int, Field(ge=0, le=2048)] = 256
    epochs: Annotated[int, Field(ge=1, le=500)] = 40
    obfuscation_eval: bool = False
    window_tokens: Annotated[int, Field(ge=16, le=512)] = 256
    stride_tokens: Annotated[int, Field(ge=8, le=512)] = 192
    encoder: EncoderSpec = EncoderSpec()
    # Score long texts as the detector does (max over its windows) for the threshold and the figures, and
    # train on the windows of long benign texts as extra negatives.
    windowed: bool = False
    # With `windowed`: also train on the windows of long positives that hold their inserted attack (found by
    # diffing against the clean context in the same source group). Measured on prompt_injection: no gain.
    attack_windows: bool = False
    lexical: LexicalRecipe | None = None
    # Where the carved validation rows are written, one `<dataset>.jsonl` each, so `guard eval` can report
    # the shipped policies on exactly the rows training and threshold choice never saw (issue 10).
    validation_dir: Path | None = None

    @model_validator(mode="after")
    def _lexical_is_binary(self) -> Recipe:
        if self.lexical is not None and self.mode != "binary":
            raise ValueError("a lexical model can only be fused into a binary head")
        return self


def load_recipe(path: Path) -> Recipe:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe is a mapping with name, category and data")
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None
