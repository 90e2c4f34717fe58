"""The validation split, carved before training: stratified by (dataset, label), seeded, group-aware.

Rows that share a `group` (a question, an article, a dialogue) stay on one side. Rows without one are
grouped by near-duplicate text: within a (dataset, label) stratum, rows whose embeddings have cosine
similarity >= `near_duplicate_cosine` are joined (union-find), so DAN-style variants that differ by a few
words cannot sit on both sides and inflate the validation figures.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from guard.detectors.encoder import Embeddings
from guard.training.data import Row


@dataclass(frozen=True, slots=True)
class Split:
    train: list[int]
    validation: list[int]
    groups: list[str]  # per row: the group id the split used


def _near_duplicate_groups(indices: list[int], vectors: Embeddings, cosine: float) -> dict[int, int]:
    parent = {i: i for i in indices}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    block = vectors[indices]
    for start in range(0, len(indices), 512):
        sims = block[start : start + 512] @ block.T
        rows, cols = np.nonzero(sims >= cosine)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            a, b = find(indices[start + r]), find(indices[c])
            if a != b:
                parent[a] = b
    return {i: find(i) for i in indices}


def _bucket(seed: int, group: str) -> float:
    return int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()[:8], 16) / 0x100000000


def carve(rows: list[Row], vectors: Embeddings, seed: int, fraction: float, near_duplicate_cosine: float) -> Split:
    strata: dict[tuple[str, int], list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        strata[(row.dataset, row.label)].append(index)
    groups = [""] * len(rows)
    validation: list[int] = []
    for (dataset, label), indices in sorted(strata.items()):
        ungrouped = [i for i in indices if not rows[i].group]
        roots = _near_duplicate_groups(ungrouped, vectors, near_duplicate_cosine) if ungrouped else {}
        for i in indices:
            groups[i] = f"{dataset}:g:{rows[i].group}" if rows[i].group else f"{dataset}:n:{roots[i]}"
        members: dict[str, list[int]] = defaultdict(list)
        for i in indices:
            if rows[i].group:
                # Source groups (a question with right and wrong answers) span labels: one seeded bucket
                # per group puts all its rows on one side whatever their label.
                if _bucket(seed, groups[i]) < fraction:
                    validation.append(i)
            else:
                members[groups[i]].append(i)
        # Near-duplicate clusters: seeded order, taken until the stratum's validation share is reached.
        order = sorted(members, key=lambda g: _bucket(seed, g))
        wanted = round(fraction * sum(len(m) for m in members.values()))
        taken = 0
        for group in order:
            if taken >= wanted:
                break
            validation.extend(members[group])
            taken += len(members[group])
    chosen = set(validation)
    return Split(
        train=[i for i in range(len(rows)) if i not in chosen],
        validation=sorted(chosen),
        groups=groups,
    )
