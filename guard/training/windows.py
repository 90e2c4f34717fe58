"""Training-time copies of the detector's windows, so a head is trained and measured the way it screens.

The `classifier` detector scores a text that fits the encoder whole, and a longer one in overlapping
windows (quarter of the encoder's length, 3/4 of a window apart), taking the highest window. Training on
whole texts truncated at the encoder's length never sees an injection placed late in a long email, and
measuring on them misstates what screening does. `WindowedVectors` holds the window embeddings of the
long texts (cached on disk like every other embedding) so the trainer can (a) add the windows of long
*benign* texts as extra negatives, (b) add the windows of long positives that hold their inserted attack
as extra positives, and (c) score every text as max over its windows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from guard.detectors.encoder import Embeddings, SentenceEncoder
from guard.training.embeddings import embed_texts

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]


def window_shape(max_tokens: int) -> tuple[int, int, int]:
    """(whole, window, stride) in tokens for an encoder of `max_tokens` (room left for [CLS] and [SEP])."""
    whole = max_tokens - 2
    window = whole // 4
    return whole, window, window * 3 // 4


@dataclass(frozen=True)
class WindowedVectors:
    whole: Embeddings  # one per text (the text truncated at the encoder's length)
    windows: Embeddings  # one per window of a long text
    owner: Ints  # the text each window belongs to
    spans: Ints  # (n_windows, 2): character span of each window in its text

    def max_scores(self, score: Callable[[Embeddings], Floats], indices: Ints) -> Floats:
        """Per text in `indices`: its whole-text score, or its highest window's score if it is long."""
        out = score(self.whole[indices]).astype(np.float32)
        if self.windows.shape[0] == 0:
            return out
        position = {int(i): k for k, i in enumerate(indices.tolist())}
        picked = np.array([position.get(int(o), -1) for o in self.owner], dtype=np.int64)
        inside = picked >= 0
        if not inside.any():
            return out
        window_scores = score(self.windows[inside])
        targets = picked[inside]
        best = np.full(len(indices), -1.0, dtype=np.float32)
        np.maximum.at(best, targets, window_scores)
        has_windows = best >= 0
        out[has_windows] = best[has_windows]
        return out

    def negative_windows(self, indices: Ints, labels: Ints) -> Embeddings:
        """Window vectors of the long benign texts among `indices` (extra negatives for training)."""
        chosen = set(int(i) for i in indices.tolist() if labels[i] == 0)
        mask = np.array([int(o) in chosen for o in self.owner], dtype=bool)
        out: Embeddings = self.windows[mask] if mask.size else self.windows[:0]
        return out

    def attack_windows(self, indices: Ints, inserted: dict[int, tuple[int, int]]) -> tuple[Embeddings, Ints]:
        """Windows of long positives that cover most of their inserted attack (see `inserted_spans`):
        (vectors, owning text), so an injection late in a long email is learned as the detector sees it."""
        chosen = set(int(i) for i in indices.tolist()) & set(inserted)
        keep = []
        for k, (o, (a, b)) in enumerate(zip(self.owner.tolist(), self.spans.tolist(), strict=True)):
            if o in chosen:
                start, end = inserted[o]
                overlap = min(b, end) - max(a, start)
                if overlap > 0 and overlap >= 0.5 * min(end - start, b - a):
                    keep.append(k)
        picked = np.array(keep, dtype=np.int64)
        return self.windows[picked], self.owner[picked]


def inserted_spans(texts: list[str], labels: Ints, groups: list[str], datasets: list[str]) -> dict[int, tuple[int, int]]:
    """Where an attack was inserted into a clean context, for positives whose source group also holds that
    clean context (BIPIA ships both): the span between their longest common prefix and suffix."""
    clean: dict[tuple[str, str], str] = {}
    for text, label, group, dataset in zip(texts, labels.tolist(), groups, datasets, strict=True):
        if label == 0 and group:
            clean.setdefault((dataset, group), text)
    out: dict[int, tuple[int, int]] = {}
    for index, (text, label, group, dataset) in enumerate(zip(texts, labels.tolist(), groups, datasets, strict=True)):
        context = clean.get((dataset, group)) if label == 1 and group else None
        if context is None or len(text) <= len(context):
            continue
        prefix = 0
        limit = len(context)
        while prefix < limit and text[prefix] == context[prefix]:
            prefix += 1
        suffix = 0
        while suffix < limit - prefix and text[-1 - suffix] == context[-1 - suffix]:
            suffix += 1
        if len(text) - suffix - prefix > 0:
            out[index] = (prefix, len(text) - suffix)
    return out


def window_vectors(
    encoder: SentenceEncoder, normalize: Callable[[str], str], texts: list[str], whole: Embeddings, cache_dir: Path,
    description: str,
) -> WindowedVectors:
    """Window embeddings of every text too long to be scored whole (the detector's own spans)."""
    whole_tokens, window, stride = window_shape(encoder.spec.max_tokens)
    pieces: list[str] = []
    owner: list[int] = []
    cuts: list[tuple[int, int]] = []
    for index, text in enumerate(texts):
        spans = encoder.token_windows(text, whole_tokens, window, stride)
        if len(spans) > 1:
            pieces += [text[a:b] for a, b in spans]
            owner += [index] * len(spans)
            cuts += spans
    vectors = embed_texts(encoder, pieces, normalize, cache_dir, description=description) if pieces else whole[:0]
    return WindowedVectors(whole, vectors, np.array(owner, dtype=np.int64), np.array(cuts, dtype=np.int64).reshape(-1, 2))
