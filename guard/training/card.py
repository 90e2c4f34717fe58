"""The model card of a trained head, written from its recipe and measured figures (never by hand), so
the card and the shipped weights cannot drift apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guard.training.recipe import Recipe


def _ci(entry: dict[str, float] | None) -> str:
    if not entry or entry.get("value") is None or entry["value"] != entry["value"]:
        return "n/a"
    return f"{entry['value']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]"


def _lexical_lines(recipe: Recipe, config: dict[str, Any]) -> list[str]:
    lines = []
    if recipe.windowed:
        lines.append("- Windowed training: the windows of long benign texts are extra negatives, and every figure below scores "
                     "a long text as screening does (its highest window).")
    if recipe.lexical is not None and "lexical" in config:
        spec = recipe.lexical.spec
        lines.append(
            f"- Fused with a lexical model (`lexical.npz`, sha256 `{config['lexical']['sha256']}`): logistic regression "
            f"(C {recipe.lexical.c}, {recipe.lexical.weighting}-weighted) over hashed char_wb {spec.char_ngrams[0]}-"
            f"{spec.char_ngrams[1]}-grams and word {spec.word_ngrams[0]}-{spec.word_ngrams[1]}-grams of the normalised whole "
            f"text ({spec.n_features} buckets each). A stacker fitted on out-of-fold scores of the training part fuses its "
            "score with the embedding head's best window; the threshold applies to the fused score.")
    return lines


def write_card(path: Path, recipe: Recipe, config: dict[str, Any], metrics: dict[str, Any]) -> None:
    v = metrics["validation"]
    lines = [
        f"# Model card: `{recipe.name}` head",
        "",
        recipe.summary.strip(),
        "",
        "## What it is",
        f"- Category: `{recipe.category.value}`; mode: `{recipe.mode}`; classes: {', '.join(config['classes'])}.",
        f"- A {'one-hidden-layer MLP (' + str(recipe.hidden) + ' units)' if recipe.hidden else 'logistic regression'} "
        "on frozen all-MiniLM-L6-v2 sentence embeddings (mean pooled, L2-normalised), encoder pinned in "
        f"`config.yaml` (sha256 `{config['encoder']['sha256']}`). Head weights: `head.npz`, sha256 `{config['head']['sha256']}`.",
        "- Text is normalised before encoding (NFKC, invisible characters, confusables, letter spacing); training "
        f"texts are truncated at {recipe.encoder.max_tokens} tokens; at screening time a text of up to "
        f"{recipe.encoder.max_tokens - 2} tokens is scored whole and a longer one in windows of "
        f"{(recipe.encoder.max_tokens - 2) // 4} tokens, {(recipe.encoder.max_tokens - 2) // 4 * 3 // 4} apart "
        "(the text's score is its highest window).",
        *_lexical_lines(recipe, config),
        f"- Operating threshold (raw score) {config['threshold']:.4f}, chosen on out-of-fold scores of the training part "
        f"for a false-positive rate of at most {recipe.target_fpr:.1%}. Findings report a calibrated score where this "
        "threshold is 0.5.",
        "",
        "## Training data and licences",
        "Only data whose licence allows shipping a model trained on it; rows are copied in `data/training/` "
        "(attribution in `data/ATTRIBUTION.md`).",
        "",
    ]
    lines += [f"- `{s.path}`: {s.licence}" for s in recipe.data]
    lines += [
        "",
        "## Held-out figures (validation split)",
        f"Carved before training: {recipe.validation_fraction:.0%} of each (dataset, label) stratum, seed {recipe.seed}, "
        f"group-aware (source groups, and near-duplicate clusters at cosine >= {recipe.near_duplicate_cosine}). "
        f"{metrics['rows']['train']} training rows, {metrics['rows']['validation']} validation rows. "
        "95% Wilson intervals in brackets.",
        "",
        "| metric | value [95% CI] |",
        "| --- | --- |",
        f"| recall | {_ci(v['recall'])} |",
        f"| false-positive rate | {_ci(v['fpr'])} |",
        f"| precision | {_ci(v['precision'])} |",
        f"| F1 | {v['f1']} |",
        f"| counts | tp {v['tp']}, fp {v['fp']}, tn {v['tn']}, fn {v['fn']} |",
        *([f"| false-positive rate, benign and hard-negative sets only (NotInject, XStest, WildGuard benign, "
           f"self-instruct, GSM8K, awesome prompts) | {_ci(metrics['fpr_benign_sets'])} |"] if "fpr_benign_sets" in metrics else []),
        *([f"| out-of-fold on the training part: recall / false-positive rate | {_ci(metrics['out_of_fold_train']['recall'])} / "
           f"{_ci(metrics['out_of_fold_train']['fpr'])} |"] if "out_of_fold_train" in metrics else []),
        "",
        "Per dataset (validation rows):",
        "",
        "| dataset | n | recall | false-positive rate |",
        "| --- | --- | --- | --- |",
    ]
    for name, entry in metrics["per_dataset"].items():
        lines.append(f"| {name} | {entry['n']} | {_ci(entry.get('recall'))} | {_ci(entry.get('fpr'))} |")
    if "per_technique" in metrics:
        lines += ["", "Per technique (validation positives): recall as a positive, and whether the finding names the right technique.", "",
                  "| technique | n | recall | named correctly when detected |", "| --- | --- | --- | --- |"]
        for name, entry in metrics["per_technique"].items():
            lines.append(f"| {name} | {entry['n']} | {_ci(entry['recall'])} | {_ci(entry['named_correctly_when_detected'])} |")
    if "obfuscation" in metrics:
        how = " Every row, plain included, is scored whole (truncated at the encoder's length), not in windows." if recipe.windowed else ""
        lines += ["", f"Obfuscated variants of the validation positives (transforms in `guard/training/obfuscate.py`).{how}", "",
                  "| variant | n | recall |", "| --- | --- | --- |"]
        for name, entry in metrics["obfuscation"].items():
            lines.append(f"| {name} | {entry['n']} | {_ci(entry['recall'])} |")
    if metrics.get("evaluate_only"):
        lines += ["", "## Out-of-licence evaluation (not trained on; the whole TRAIN file of each set)", "",
                  "| dataset | licence | n | recall | false-positive rate |", "| --- | --- | --- | --- | --- |"]
        for name, entry in metrics["evaluate_only"].items():
            lines.append(f"| {name} | {entry['licence']} | {entry['n']} | {_ci(entry.get('recall'))} | {_ci(entry.get('fpr'))} |")
    lines += ["", "## Known misses", ""]
    lines += [f"- {m}" for m in recipe.known_misses] or ["- none recorded"]
    lines += ["", "## Rebuild", "", f"    .venv/bin/guard train --recipe {path.parent}/recipe.yaml --out {path.parent}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
