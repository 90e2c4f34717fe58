"""`guard train`'s work: rows → embeddings → validation split → head → threshold → model folder.

1. The validation split is carved first (stratified, seeded, group-aware: see `split.py`) and never
   touched by training or threshold choice.
2. The operating threshold comes from out-of-fold scores on the training part (k group folds): the lowest
   score whose out-of-fold false-positive rate is at most `target_fpr`.
3. The final head is fit on the whole training part; the validation figures (Wilson 95% intervals) are
   written to `metrics.json` and the model card, with per-dataset figures, obfuscated-variant recall and
   out-of-licence evaluation sets reported apart.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml
from tqdm import tqdm

from guard.detectors.encoder import SentenceEncoder, file_sha256
from guard.detectors.normalize import TextNormalizer
from guard.evaluation.metrics import BinaryCounts, wilson
from guard.training.card import write_card
from guard.training.data import Row, read_rows
from guard.training.embeddings import DEFAULT_CACHE_DIR, embed_texts
from guard.training.fusion import BENIGN_SETS, Scorer, fit_fused, head_scores as _scores
from guard.training.head import HeadWeights, TrainSettings, train_head
from guard.training.lexical import LexicalModel
from guard.training.obfuscate import OBFUSCATIONS
from guard.training.recipe import Recipe
from guard.training.split import carve
from guard.training.windows import inserted_spans, window_vectors

NONE_CLASS = "none"


@dataclass(frozen=True, slots=True)
class TrainResult:
    out_dir: Path
    threshold: float
    metrics: dict[str, Any]


def class_names(recipe: Recipe, rows: list[Row]) -> list[str]:
    if recipe.mode == "binary":
        return [NONE_CLASS, recipe.name]
    names = sorted({class_of(recipe, r, []) for r in rows if r.label == 1})
    return [NONE_CLASS, *names]


def class_of(recipe: Recipe, row: Row, classes: list[str]) -> str:
    if row.label == 0:
        return NONE_CLASS
    if recipe.mode == "binary" or not row.techniques:
        return recipe.name
    raw = row.techniques[0]
    return recipe.technique_names.get(raw, raw.lower().replace(" ", "_").replace("-", "_"))


def choose_threshold(negative_scores: npt.NDArray[np.float32], target_fpr: float) -> float:
    """Lowest threshold at which at most `target_fpr` of the negatives score at or above it."""
    if negative_scores.size == 0:
        return 0.5
    ordered = np.sort(negative_scores)[::-1]
    allowed = int(np.floor(target_fpr * ordered.size))
    if allowed >= ordered.size:
        return float(ordered[-1])
    return float(min(1.0, np.nextafter(ordered[allowed], np.float32(2.0))))


def _fold_of(group: str, seed: int, folds: int) -> int:
    return int(hashlib.sha256(f"fold:{seed}:{group}".encode()).hexdigest()[:8], 16) % folds


def train(recipe: Recipe, out_dir: Path, threads: int = 1, cache_dir: Path = DEFAULT_CACHE_DIR) -> TrainResult:
    started = time.perf_counter()
    rows: list[Row] = []
    for source in recipe.data:
        rows.extend(read_rows(source.path))
    encoder = SentenceEncoder(recipe.encoder, threads)
    encoder.load()
    normalizer = TextNormalizer(encoder.vocabulary())
    vectors = embed_texts(encoder, [r.text for r in rows], normalizer, cache_dir, description=f"{recipe.name}: encoding")

    classes = class_names(recipe, rows)
    targets = np.array([classes.index(class_of(recipe, r, classes)) for r in rows], dtype=np.int64)
    labels = np.array([r.label for r in rows], dtype=np.int64)
    split = carve(rows, vectors, recipe.seed, recipe.validation_fraction, recipe.near_duplicate_cosine)
    settings = TrainSettings(hidden=recipe.hidden, epochs=recipe.epochs, seed=recipe.seed)
    windowed = (
        window_vectors(encoder, normalizer, [r.text for r in rows], vectors, cache_dir, f"{recipe.name}: windows")
        if recipe.windowed else None
    )

    inserted = inserted_spans([r.text for r in rows], labels, [r.group for r in rows], [r.dataset for r in rows])

    def fit(indices: npt.NDArray[np.int64]) -> HeadWeights:
        x, y = vectors[indices], targets[indices]
        if windowed is not None:
            benign = windowed.negative_windows(indices, labels)
            attacks, owners = windowed.attack_windows(indices, inserted if recipe.attack_windows else {})
            x = np.concatenate([x, benign, attacks])
            y = np.concatenate([y, np.zeros(len(benign), dtype=np.int64), targets[owners]])
        return train_head(x, y, len(classes), settings)

    def head_scores(weights: HeadWeights, indices: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        if windowed is not None:
            return windowed.max_scores(lambda v: _scores(weights, v), indices)
        return _scores(weights, vectors[indices])

    train_idx = np.array(split.train, dtype=np.int64)
    val_idx = np.array(split.validation, dtype=np.int64)
    folds = np.array([_fold_of(split.groups[i], recipe.seed, recipe.folds) for i in split.train])
    fold_of_row = {int(i): int(f) for i, f in zip(train_idx, folds, strict=True)}
    oof = np.zeros(len(train_idx), dtype=np.float32)
    with tqdm(total=recipe.folds + 1, desc=f"{recipe.name}: training", unit="fit", leave=False) as bar:
        for fold in range(recipe.folds):
            inside, outside = train_idx[folds != fold], folds == fold
            oof[outside] = head_scores(fit(inside), train_idx[outside])
            bar.update(1)
        final = fit(train_idx)
        bar.update(1)
    val_scores = head_scores(final, val_idx)
    lexical: LexicalModel | None = None
    if recipe.lexical is not None:
        normalized = [normalizer(r.text) for r in rows]
        fused = fit_fused(recipe.lexical, normalized, labels, [r.dataset for r in rows], train_idx, val_idx,
                          fold_of_row, recipe.folds, oof, val_scores, recipe.seed)
        lexical, oof, val_scores = fused.model, fused.oof, fused.validation
    train_labels = labels[train_idx]
    threshold = choose_threshold(oof[train_labels == 0], recipe.target_fpr)

    val_rows = [rows[i] for i in split.validation]
    if recipe.validation_dir is not None:
        write_validation(recipe.validation_dir, val_rows)
    probabilities = final.probabilities(vectors[val_idx])
    predicted = val_scores >= threshold
    metrics: dict[str, Any] = {
        "threshold": threshold,
        "rows": {"train": len(split.train), "validation": len(split.validation)},
        "validation": BinaryCounts.from_pairs([r.label == 1 for r in val_rows], predicted.tolist()).as_dict(),
        "out_of_fold_train": BinaryCounts.from_pairs(train_labels.tolist(), (oof >= threshold).tolist()).as_dict(),
        "per_dataset": _per_dataset(val_rows, predicted),
    }
    if recipe.lexical is not None:
        negatives = [i for i, r in enumerate(val_rows) if r.label == 0 and r.dataset in BENIGN_SETS]
        metrics["fpr_benign_sets"] = wilson(int(predicted[negatives].sum()), len(negatives)).as_dict()
    if recipe.mode == "techniques":
        metrics["per_technique"] = _per_technique(recipe, classes, val_rows, probabilities, predicted)
    scorer = Scorer(encoder, normalizer, final, lexical, cache_dir)
    if recipe.obfuscation_eval:
        metrics["obfuscation"] = _obfuscation(scorer, val_rows, threshold)
    metrics["evaluate_only"] = _evaluate_only(recipe, scorer, threshold)
    metrics["seconds"] = round(time.perf_counter() - started, 1)

    out_dir.mkdir(parents=True, exist_ok=True)
    head_path = out_dir / "head.npz"
    final.save(head_path)
    head_sha = file_sha256(head_path)
    version = head_sha
    lexical_ref: dict[str, Any] = {}
    if lexical is not None and recipe.lexical is not None:
        lexical_path = out_dir / "lexical.npz"
        lexical.weights.save(lexical_path)
        lexical_sha = file_sha256(lexical_path)
        version = hashlib.sha256(f"{head_sha}:{lexical_sha}".encode()).hexdigest()
        lexical_ref = {"lexical": {"file": "lexical.npz", "sha256": lexical_sha, **recipe.lexical.spec.model_dump(mode="json")}}
    config = {
        "name": recipe.name,
        "version": version[:12],
        "category": recipe.category.value,
        "mode": recipe.mode,
        "classes": classes,
        "threshold": round(threshold, 6),
        "window_tokens": recipe.window_tokens,
        "stride_tokens": recipe.stride_tokens,
        "head": {"file": "head.npz", "sha256": head_sha},
        **lexical_ref,
        "encoder": recipe.encoder.model_dump(mode="json"),
        "trained_on": [{"path": str(s.path), "licence": s.licence} for s in recipe.data],
    }
    (out_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    write_card(out_dir / "card.md", recipe, config, metrics)
    return TrainResult(out_dir, threshold, metrics)


def write_validation(folder: Path, rows: list[Row]) -> None:
    """The validation rows, one JSONL file per dataset, in the shape `guard eval` reads."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.jsonl"):
        stale.unlink()
    for dataset in sorted({r.dataset for r in rows}):
        with (folder / f"{dataset}.jsonl").open("w", encoding="utf-8") as out:
            for r in rows:
                if r.dataset == dataset:
                    record = {"text": r.text, "label": r.label, "category": r.category, "dataset": r.dataset}
                    out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")


def _per_dataset(rows: list[Row], predicted: npt.NDArray[np.bool_]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for dataset in sorted({r.dataset for r in rows}):
        picked = [i for i, r in enumerate(rows) if r.dataset == dataset]
        positives = [i for i in picked if rows[i].label == 1]
        negatives = [i for i in picked if rows[i].label == 0]
        entry: dict[str, object] = {}
        if positives:
            entry["recall"] = wilson(int(predicted[positives].sum()), len(positives)).as_dict()
        if negatives:
            entry["fpr"] = wilson(int(predicted[negatives].sum()), len(negatives)).as_dict()
        entry["n"] = len(picked)
        out[dataset] = entry
    return out


def _per_technique(
    recipe: Recipe, classes: list[str], rows: list[Row], probabilities: npt.NDArray[np.float32],
    predicted: npt.NDArray[np.bool_],
) -> dict[str, dict[str, object]]:
    named = np.argmax(probabilities[:, 1:], axis=1) + 1
    out: dict[str, dict[str, object]] = {}
    for index, name in enumerate(classes[1:], start=1):
        members = [i for i, r in enumerate(rows) if r.label == 1 and classes.index(class_of(recipe, r, classes)) == index]
        if not members:
            continue
        detected = [i for i in members if predicted[i]]
        out[name] = {
            "n": len(members),
            "recall": wilson(len(detected), len(members)).as_dict(),
            "named_correctly_when_detected": wilson(sum(1 for i in detected if named[i] == index), len(detected)).as_dict(),
        }
    return out


def _obfuscation(scorer: Scorer, rows: list[Row], threshold: float) -> dict[str, dict[str, object]]:
    """Recall on transformed validation positives. Scored whole (truncated at the encoder's length), plain
    row included, so the rows compare like with like: windowing a letter-spaced text multiplies its
    windows and costs more CPU than this table is worth."""
    positives = [r.text for r in rows if r.label == 1]
    out: dict[str, dict[str, object]] = {}
    for name, transform in {"plain": lambda t: t, **OBFUSCATIONS}.items():
        variants = [transform(t) for t in positives]
        caught = int((scorer.scores(variants, f"obfuscation {name}", windowed=False) >= threshold).sum())
        out[name] = {"n": len(variants), "recall": wilson(caught, len(variants)).as_dict()}
    return out


def _evaluate_only(recipe: Recipe, scorer: Scorer, threshold: float) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for source in recipe.evaluate_only:
        if not source.path.is_file():
            continue
        rows = read_rows(source.path)
        scores = scorer.scores([r.text for r in rows], f"eval {source.path.parent.name}", windowed=recipe.windowed)
        for dataset, entry in _per_dataset(rows, scores >= threshold).items():
            entry["licence"] = source.licence
            out[dataset] = entry
    return out
