"""Training the lexical model and its stacker next to an embedding head (see `lexical.py`), and scoring
arbitrary texts with the finished pair the way the `classifier` detector does.

Everything that picks a number (the stacker's weights, the operating threshold) sees only out-of-fold
scores of the training part, on the same group folds as the embedding head; the validation split is
scored once, by the models fitted on the whole training part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from guard.detectors.encoder import Embeddings, SentenceEncoder
from guard.detectors.normalize import TextNormalizer
from guard.training.embeddings import embed_texts
from guard.training.head import HeadWeights
from guard.training.lexical import (
    Featurizer,
    LexicalModel,
    fuse,
    lexical_scores,
    sparse_weights,
    stratum_weights,
    train_fusion,
    train_lexical,
)
from guard.training.recipe import LexicalRecipe
from guard.training.windows import window_vectors

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]

# The benign and hard-negative sets the false-positive target is stated over (the list).
BENIGN_SETS = frozenset({
    "notinject_hard_negatives", "xstest_safe_prompts", "wildguardtest_benign", "self_instruct_prompts",
    "gsm8k_questions", "awesome_chatgpt_prompts",
})


def head_scores(weights: HeadWeights, vectors: Embeddings) -> Floats:
    out: Floats = (1.0 - weights.probabilities(vectors)[:, 0]).astype(np.float32)
    return out


@dataclass(frozen=True)
class FusedFit:
    model: LexicalModel
    oof: Floats  # fused out-of-fold scores of the training part
    validation: Floats  # fused scores of the validation split


def fit_fused(
    recipe: LexicalRecipe, normalized: list[str], labels: Ints, datasets: Sequence[str], train_idx: Ints, val_idx: Ints,
    fold_of_row: dict[int, int], folds: int, head_oof: Floats, head_validation: Floats, seed: int,
) -> FusedFit:
    """Lexical out-of-fold scores on the head's folds, the stacker on both out-of-fold scores, then the
    lexical model refit on the whole training part."""
    features = Featurizer(recipe.spec).transform(normalized)
    dataset_array = np.array(list(datasets))

    def weights(indices: Ints) -> Floats | None:
        if recipe.weighting == "balanced":
            return None
        return stratum_weights(labels[indices], dataset_array[indices].tolist())

    fold = np.array([fold_of_row[int(i)] for i in train_idx])
    lexical_oof = np.zeros(len(train_idx), dtype=np.float32)
    for k in range(folds):
        inside = train_idx[fold != k]
        coef, intercept = train_lexical(features[inside], labels[inside], recipe.c, seed, weights(inside))
        lexical_oof[fold == k] = lexical_scores(features[train_idx[fold == k]], coef, intercept)
    stacker = train_fusion(head_oof, lexical_oof, labels[train_idx])
    coef, intercept = train_lexical(features[train_idx], labels[train_idx], recipe.c, seed, weights(train_idx))
    model = LexicalModel(sparse_weights(coef, intercept, stacker, recipe.spec))
    lexical_validation = lexical_scores(features[val_idx], coef, intercept)
    return FusedFit(model, fuse(stacker, head_oof, lexical_oof), fuse(stacker, head_validation, lexical_validation))


class Scorer:
    """A finished head (and lexical model, if any) scoring new texts: whole, or max over windows."""

    def __init__(
        self, encoder: SentenceEncoder, normalizer: TextNormalizer, head: HeadWeights, lexical: LexicalModel | None,
        cache_dir: Path,
    ) -> None:
        self._encoder, self._normalizer, self._head, self._lexical = encoder, normalizer, head, lexical
        self._cache_dir = cache_dir

    def scores(self, texts: list[str], description: str, windowed: bool) -> Floats:
        vectors = embed_texts(self._encoder, texts, self._normalizer, self._cache_dir, description=description)
        if windowed:
            spans = window_vectors(self._encoder, self._normalizer, texts, vectors, self._cache_dir, f"{description} windows")
            embedding = spans.max_scores(lambda v: head_scores(self._head, v), np.arange(len(texts), dtype=np.int64))
        else:
            embedding = head_scores(self._head, vectors)
        if self._lexical is None:
            return embedding
        return self._lexical.fuse(embedding, self._lexical.scores([self._normalizer(t) for t in texts]))
