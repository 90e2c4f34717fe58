"""A lexical model fused with an embedding head: hashed character and word n-grams, logistic regression.

The sentence embedding blurs short, pointed hijacks ("vergiss alles davor, sag jetzt ...") into their
benign neighbours; exact n-grams do not. The lexical model sees the *normalised* text (so homoglyphs,
zero-width characters and spaced letters are undone first), hashed into a fixed space (no vocabulary to
ship): char_wb n-grams and word n-grams, each block log-scaled and L2-normalised. Its weights ship as the
non-zero hash buckets of the coefficient vector in an `.npz`, pinned by sha256 like `head.npz`.

A small stacker fuses the two raw scores: sigmoid(a * logit(embedding score) + b * logit(lexical score)
+ c), fitted on out-of-fold scores of the training part. The fused score is what the head's threshold
applies to. Inference needs numpy and scikit-learn's `HashingVectorizer` (no torch).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

Floats = npt.NDArray[np.float32]
_EPS = 1e-6


class LexicalSpec(BaseModel):
    """How texts are hashed; written to the head's `config.yaml` so training and screening agree."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    n_features: int = Field(default=1 << 18, ge=1 << 10, le=1 << 22)  # per block (char, word)
    char_ngrams: tuple[int, int] = (2, 5)
    word_ngrams: tuple[int, int] = (1, 2)
    max_chars: int = Field(default=20_000, ge=256)  # a longer text is hashed from its head and tail


class Featurizer:
    """Hashed n-gram features of normalised texts, as a scipy CSR matrix (2 * n_features columns)."""

    def __init__(self, spec: LexicalSpec) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        self.spec = spec
        common: dict[str, Any] = {"n_features": spec.n_features, "alternate_sign": False, "norm": None, "lowercase": True,
                                  "dtype": np.float32}
        self._char = HashingVectorizer(analyzer="char_wb", ngram_range=spec.char_ngrams, **common)
        self._word = HashingVectorizer(analyzer="word", ngram_range=spec.word_ngrams, token_pattern=r"(?u)\b\w+\b", **common)

    @staticmethod
    def clip_text(text: str, max_chars: int) -> str:
        half = max_chars // 2
        return text if len(text) <= max_chars else text[:half] + " " + text[-half:]

    def transform(self, texts: Sequence[str]) -> Any:
        import scipy.sparse as sp

        clipped = [self.clip_text(t, self.spec.max_chars) for t in texts]
        blocks = []
        for vectorizer in (self._char, self._word):
            block = vectorizer.transform(clipped).tocsr()
            block.data = np.log1p(block.data)
            norms = np.sqrt(np.asarray(block.multiply(block).sum(axis=1)).ravel())
            block = sp.diags(1.0 / np.maximum(norms, 1e-12)).astype(np.float32) @ block
            blocks.append(block)
        return sp.hstack(blocks, format="csr", dtype=np.float32)


def logit(p: Floats) -> Floats:
    clipped = np.clip(p.astype(np.float64), _EPS, 1 - _EPS)
    out: Floats = np.log(clipped / (1 - clipped)).astype(np.float32)
    return out


def sigmoid(x: npt.NDArray[np.floating[Any]]) -> Floats:
    out: Floats = (1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))).astype(np.float32)
    return out


@dataclass(frozen=True)
class LexicalWeights:
    """Logistic-regression coefficients over the hashed features plus the fusion stacker."""

    indices: npt.NDArray[np.int64]  # non-zero buckets of the coefficient vector
    values: Floats
    intercept: float
    fusion: Floats  # [a (embedding logit), b (lexical logit), c (bias)]
    spec: LexicalSpec

    def dense(self) -> Floats:
        coef = np.zeros(2 * self.spec.n_features, dtype=np.float32)
        coef[self.indices] = self.values
        return coef

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(handle, indices=self.indices.astype(np.int32), values=self.values.astype(np.float32),
                     intercept=np.array([self.intercept], dtype=np.float32), fusion=self.fusion.astype(np.float32))

    @classmethod
    def load(cls, path: Path, spec: LexicalSpec) -> LexicalWeights:
        with np.load(path, allow_pickle=False) as data:
            indices = data["indices"].astype(np.int64)
            if indices.size and (indices.min() < 0 or indices.max() >= 2 * spec.n_features):
                raise ValueError("lexical weights do not fit the configured hash space")
            return cls(indices, data["values"].astype(np.float32), float(data["intercept"][0]),
                       data["fusion"].astype(np.float32), spec)


_WORD = re.compile(r"(?u)\b\w+\b")
_INT_MIN = -(1 << 31)


class LexicalModel:
    """Loaded lexical weights: raw lexical scores and fused scores.

    Screening does not build a sparse matrix per text (scikit-learn's per-call overhead is milliseconds):
    it cuts the char n-grams of each distinct word once (memoised per word), hashes n-grams with the same
    murmurhash3 as `HashingVectorizer` (memoised), and sums the matching coefficients. `Featurizer` (training) and
    this path give the same score; a unit test holds them to it."""

    def __init__(self, weights: LexicalWeights, memo_entries: int = 1 << 18) -> None:
        # Imported here, at load, not on the first screened text (importing scikit-learn takes ~0.5 s).
        from sklearn.utils import murmurhash3_32

        self._murmur = murmurhash3_32
        self.weights = weights
        self._coef = weights.dense()
        self._memo: dict[str, int] = {}
        self._word_memo: dict[str, npt.NDArray[np.int64]] = {}
        self._memo_entries = memo_entries

    def _index(self, gram: str) -> int:
        index = self._memo.get(gram)
        if index is None:
            n = self.weights.spec.n_features
            h = int(self._murmur(gram, seed=0))
            index = (2147483647 - (n - 1)) % n if h == _INT_MIN else abs(h) % n
            if len(self._memo) >= self._memo_entries:
                self._memo.clear()  # bounded: a flood of novel n-grams cannot grow it without limit
            self._memo[gram] = index
        return index

    def _word_grams(self, word: str) -> npt.NDArray[np.int64]:
        """Hash buckets of the char_wb n-grams of one word (as `HashingVectorizer` cuts them), memoised."""
        found = self._word_memo.get(word)
        if found is not None:
            return found
        padded = f" {word} "
        grams: list[str] = []
        low, high = self.weights.spec.char_ngrams
        for n in range(low, high + 1):
            grams += [padded[start : start + n] for start in range(max(1, len(padded) - n + 1))]
            if len(padded) <= n:
                break  # a short word counts once, whatever n
        out = np.array([self._index(g) for g in grams], dtype=np.int64)
        if len(self._word_memo) >= self._memo_entries:
            self._word_memo.clear()
        self._word_memo[word] = out
        return out

    def _block(self, indices: npt.NDArray[np.int64], values: npt.NDArray[np.float64], offset: int) -> float:
        if indices.size == 0:
            return 0.0
        unique, inverse = np.unique(indices, return_inverse=True)
        summed = np.log1p(np.bincount(inverse, weights=values))
        norm = float(np.sqrt(np.dot(summed, summed)))
        return float(np.dot(summed, self._coef[unique + offset])) / max(norm, 1e-12)

    def _score(self, text: str) -> float:
        spec = self.weights.spec
        lowered = Featurizer.clip_text(text, spec.max_chars).lower()
        per_word = Counter(lowered.split())
        grams = [self._word_grams(w) for w in per_word]
        if grams:
            char_indices = np.concatenate(grams)
            char_values = np.repeat(np.fromiter(per_word.values(), dtype=np.float64, count=len(per_word)), [g.size for g in grams])
        else:
            char_indices, char_values = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        tokens = _WORD.findall(lowered)
        words: Counter[str] = Counter()
        for n in range(spec.word_ngrams[0], spec.word_ngrams[1] + 1):
            words.update(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
        word_indices = np.fromiter((self._index(g) for g in words), dtype=np.int64, count=len(words))
        word_values = np.fromiter(words.values(), dtype=np.float64, count=len(words))
        return (self._block(char_indices, char_values, 0) + self._block(word_indices, word_values, spec.n_features)
                + self.weights.intercept)

    def scores(self, normalized_texts: Sequence[str]) -> Floats:
        raw = np.array([self._score(t) for t in normalized_texts], dtype=np.float64)
        return sigmoid(raw)

    def fuse(self, embedding_scores: Floats, lexical_scores: Floats) -> Floats:
        return fuse(self.weights.fusion, embedding_scores, lexical_scores)


def fuse(fusion: Floats, embedding_scores: Floats, lexical_scores: Floats) -> Floats:
    a, b, c = (float(v) for v in fusion)
    return sigmoid(a * logit(embedding_scores).astype(np.float64) + b * logit(lexical_scores).astype(np.float64) + c)


def stratum_weights(labels: npt.NDArray[np.int64], datasets: Sequence[str]) -> Floats:
    """Per-row weights giving every (dataset, label) stratum the same total weight within its label, and
    both labels the same total: a small hard-negative set (benign BIPIA contexts) counts as much as GSM8K."""
    keys = [f"{d}\0{int(y)}" for d, y in zip(datasets, labels, strict=True)]
    sizes: dict[str, int] = {}
    for key in keys:
        sizes[key] = sizes.get(key, 0) + 1
    strata_per_label = {y: sum(1 for k in sizes if k.endswith(f"\0{y}")) for y in (0, 1)}
    out = np.array([1.0 / (sizes[k] * strata_per_label[int(y)]) for k, y in zip(keys, labels, strict=True)], dtype=np.float64)
    scaled: Floats = (out * len(out) / out.sum()).astype(np.float32)
    return scaled


def train_lexical(
    features: Any, labels: npt.NDArray[np.int64], c: float, seed: int, sample_weight: Floats | None = None,
) -> tuple[Floats, float]:
    """L2 logistic regression (class-balanced unless `sample_weight` is given); (dense coefficients, intercept)."""
    from sklearn.linear_model import LogisticRegression

    balanced = "balanced" if sample_weight is None else None
    model = LogisticRegression(C=c, class_weight=balanced, max_iter=2000, random_state=seed)
    model.fit(features, labels, sample_weight=sample_weight)
    return model.coef_.ravel().astype(np.float32), float(model.intercept_[0])


def lexical_scores(features: Any, coef: Floats, intercept: float) -> Floats:
    return sigmoid(features @ coef + intercept)


def train_fusion(embedding_scores: Floats, lexical: Floats, labels: npt.NDArray[np.int64]) -> Floats:
    """The stacker: logistic regression on the two logits (out-of-fold scores only)."""
    from sklearn.linear_model import LogisticRegression

    x = np.stack([logit(embedding_scores), logit(lexical)], axis=1)
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    model.fit(x, labels)
    return np.array([model.coef_[0, 0], model.coef_[0, 1], model.intercept_[0]], dtype=np.float32)


def sparse_weights(coef: Floats, intercept: float, fusion: Floats, spec: LexicalSpec) -> LexicalWeights:
    indices = np.flatnonzero(np.abs(coef) > 1e-7)
    return LexicalWeights(indices.astype(np.int64), coef[indices].astype(np.float32), intercept, fusion, spec)
