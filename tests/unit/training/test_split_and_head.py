"""Validation split, threshold choice and head training, on small real arrays (no encoder)."""

from __future__ import annotations

import numpy as np
import pytest

from guard.training.data import Row
from guard.training.head import HeadWeights, TrainSettings, calibrate, train_head
from guard.training.split import carve
from guard.training.trainer import choose_threshold


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_split_is_seeded_stratified_and_keeps_near_duplicates_together() -> None:
    rng = np.random.default_rng(0)
    base = _unit(rng.normal(size=(50, 16)))
    # Rows 50..59 are near-copies of rows 0..9.
    vectors = np.vstack([base, _unit(base[:10] + 0.001)])
    rows = [Row(text=f"t{i}", label=int(i % 2), category="x", dataset="d") for i in range(60)]
    first = carve(rows, vectors, seed=1, fraction=0.2, near_duplicate_cosine=0.99)
    again = carve(rows, vectors, seed=1, fraction=0.2, near_duplicate_cosine=0.99)
    other = carve(rows, vectors, seed=2, fraction=0.2, near_duplicate_cosine=0.99)
    assert first == again and first.validation != other.validation
    validation = set(first.validation)
    assert set(first.train) | validation == set(range(60)) and not set(first.train) & validation
    for i in range(10):
        if rows[i].label == rows[50 + i].label:
            assert (i in validation) == (50 + i in validation)
    labels = [rows[i].label for i in first.validation]
    assert 0 < sum(labels) < len(labels)


def test_source_groups_stay_on_one_side_across_labels() -> None:
    rows = [Row(text=f"t{i}", label=i % 2, category="x", dataset="d", group=f"q{i // 4}") for i in range(200)]
    vectors = _unit(np.random.default_rng(1).normal(size=(200, 8)))
    split = carve(rows, vectors, seed=3, fraction=0.2, near_duplicate_cosine=0.99)
    side = {}
    for i in split.validation:
        side.setdefault(rows[i].group, set()).add("v")
    for i in split.train:
        side.setdefault(rows[i].group, set()).add("t")
    assert all(len(s) == 1 for s in side.values())


def test_threshold_bounds_the_false_positive_rate() -> None:
    negatives = np.linspace(0, 1, 1000, dtype=np.float32)
    threshold = choose_threshold(negatives, 0.01)
    assert (negatives >= threshold).mean() <= 0.01
    assert (negatives >= threshold - 0.002).mean() > 0.01


def test_calibration_maps_the_threshold_to_one_half() -> None:
    raw = np.array([0.0, 0.3, 0.6, 0.9, 1.0], dtype=np.float32)
    out = calibrate(raw, 0.6)
    assert out[2] == pytest.approx(0.5) and out[0] == 0 and out[-1] == pytest.approx(1.0)
    assert list(out) == sorted(out)


@pytest.mark.parametrize("hidden", [0, 32])
def test_head_learns_a_separable_problem_and_round_trips(tmp_path, hidden: int) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    centre = _unit(rng.normal(size=(1, 384)))[0]
    positives = _unit(centre + 0.02 * rng.normal(size=(100, 384)))
    negatives = _unit(-centre + 0.02 * rng.normal(size=(100, 384)))
    vectors = np.vstack([positives, negatives])
    classes = np.array([1] * 100 + [0] * 100)
    weights = train_head(vectors, classes, 2, TrainSettings(hidden=hidden, epochs=20, seed=0))
    scores = 1 - weights.probabilities(vectors)[:, 0]
    assert scores[:100].min() > scores[100:].max()  # every positive above every negative
    weights.save(tmp_path / "head.npz")
    loaded = HeadWeights.load(tmp_path / "head.npz")
    assert np.allclose(loaded.probabilities(vectors), weights.probabilities(vectors))
    again = train_head(vectors, classes, 2, TrainSettings(hidden=hidden, epochs=20, seed=0))
    assert np.allclose(again.w1, weights.w1)
