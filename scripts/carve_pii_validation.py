"""Carve the PII validation part from the presidio train sets, before any tuning (issue 11).

Rows are grouped by (dataset, template_id): a sentence template never sits on both sides, so the
validation figures measure recognizers on sentence shapes they were not tuned on. A group goes to
validation when a seeded hash of its key falls below FRACTION. Output: data/eval/pii_validation.jsonl
(committed; the remaining rows are the tuning side, written to --tuning-out if given).

    python scripts/carve_pii_validation.py [--tuning-out /tmp/pii/tuning.jsonl]
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

DATASETS = ("presidio_evaluator_faker_generated", "presidio_generated_large", "presidio_synth_v2")
SEED = 11
FRACTION = 0.25
ROOT = Path(__file__).resolve().parent.parent


def in_validation(dataset: str, template_id: object) -> bool:
    digest = hashlib.sha256(f"{SEED}:{dataset}:{template_id}".encode()).hexdigest()[:8]
    return int(digest, 16) / 0x100000000 < FRACTION


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=Path, default=ROOT.parent.parent / "shared" / "datasets")
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "eval" / "pii_validation.jsonl")
    parser.add_argument("--tuning-out", type=Path)
    args = parser.parse_args()
    validation: list[str] = []
    tuning: list[str] = []
    for name in DATASETS:
        for line in (args.datasets / name / "train.jsonl").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            (validation if in_validation(name, row.get("template_id", row["id"])) else tuning).append(line)
    args.out.write_text("\n".join(validation) + "\n", encoding="utf-8")
    if args.tuning_out:
        args.tuning_out.write_text("\n".join(tuning) + "\n", encoding="utf-8")
    print(f"validation {len(validation)} rows -> {args.out}; tuning {len(tuning)} rows")


if __name__ == "__main__":
    main()
