"""A classifier head on frozen sentence embeddings: a one-hidden-layer MLP (or logistic regression when
`hidden` is 0), trained with torch, run with numpy (a few microseconds per text, no torch at inference).

Class 0 is always "none" (the benign class); a binary head has classes [none, <head name>], a technique
head [none, <technique>, ...]. A text's score is 1 - P(none); its label is the likeliest other class.
Scores are reported calibrated so that the head's operating threshold maps to 0.5 (piecewise linear,
monotonic), which lets one policy band table serve every head.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from guard.detectors.encoder import Embeddings

Floats = npt.NDArray[np.float32]


@dataclass(frozen=True)
class HeadWeights:
    w1: Floats
    b1: Floats
    w2: Floats
    b2: Floats

    def probabilities(self, vectors: Embeddings) -> Floats:
        logits = vectors @ self.w1 + self.b1
        if self.has_hidden:
            logits = np.maximum(logits, 0.0) @ self.w2 + self.b2
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        out: Floats = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
        return out

    @property
    def has_hidden(self) -> bool:
        return self.w2.size > 0

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez(handle, w1=self.w1, b1=self.b1, w2=self.w2, b2=self.b2)

    @classmethod
    def load(cls, path: Path) -> HeadWeights:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                w1=data["w1"].astype(np.float32),
                b1=data["b1"].astype(np.float32),
                w2=data["w2"].astype(np.float32),
                b2=data["b2"].astype(np.float32),
            )


def calibrate(raw: Floats, threshold: float) -> Floats:
    """Map raw scores so `threshold` becomes 0.5, keeping order (0 stays 0, 1 stays 1)."""
    t = min(max(threshold, 1e-6), 1 - 1e-6)
    below = 0.5 * raw / t
    above = 0.5 + 0.5 * (raw - t) / (1 - t)
    out: Floats = np.where(raw < t, below, above).astype(np.float32)
    return out


@dataclass(frozen=True, slots=True)
class TrainSettings:
    hidden: int = 256
    epochs: int = 40
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    dropout: float = 0.1
    batch_size: int = 128
    seed: int = 0


def train_head(vectors: Embeddings, classes: npt.NDArray[np.int64], n_classes: int, settings: TrainSettings) -> HeadWeights:
    """Fit the head with class-balanced cross-entropy. Deterministic for a given seed on CPU."""
    import torch

    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    x = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    y = torch.from_numpy(classes.astype(np.int64))
    counts = np.bincount(classes, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, len(classes) / (n_classes * np.maximum(counts, 1)), 0.0)
    first = torch.nn.Linear(x.shape[1], settings.hidden if settings.hidden > 0 else n_classes)
    last = torch.nn.Linear(settings.hidden, n_classes) if settings.hidden > 0 else None
    layers: list[torch.nn.Module] = [first]
    if last is not None:
        layers += [torch.nn.ReLU(), torch.nn.Dropout(settings.dropout), last]
    model = torch.nn.Sequential(*layers)
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32))
    model.train()
    for _ in range(settings.epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), settings.batch_size):
            picked = order[start : start + settings.batch_size]
            optimiser.zero_grad()
            loss = loss_fn(model(x[picked]), y[picked])
            loss.backward()
            optimiser.step()
    model.eval()
    w1 = first.weight.detach().numpy().T.copy()
    b1 = first.bias.detach().numpy().copy()
    if last is not None:
        w2 = last.weight.detach().numpy().T.copy()
        b2 = last.bias.detach().numpy().copy()
    else:
        w2 = np.zeros((0, 0), dtype=np.float32)
        b2 = np.zeros((0,), dtype=np.float32)
    return HeadWeights(w1=w1, b1=b1, w2=w2, b2=b2)
