"""Per-technique evaluation files for manipulation in answers, one file per technique, for `guard eval`.

    python -m guard.training.manipulation_eval data/training ../shared/datasets /tmp/disinfo/manip_eval

`guard eval` reports per file, so a file whose positives are all one technique gives that technique's
recall; the benign files give the false-positive rates. Three sources, kept apart:
- `handwritten_<technique>` / `handwritten_hard_negatives`: the validation part of
  `data/training/manipulation_answers_handwritten.jsonl` exactly as `guard train` carves it (same seed,
  fraction and group rule as `split.py`), so no row here was trained on or used for the threshold;
- `darkpatterns_urgency` / `darkpatterns_social_proof` / `darkpatterns_benign`: ec_darkpatterns (shopping
  site strings; texts GPL-3.0, so evaluation only and not shipped), Urgency → false urgency, Social Proof →
  bandwagon;
- `mentalmanip_*`: MentalManip dialogues (CC BY-NC 4.0, evaluation only, not shipped): Intimidation → fear
  appeal, Playing Victim Role / Shaming or Belittlement → guilt-tripping, Denial / Feigning Innocence →
  gaslighting, and the non-manipulative dialogues; at most `MENTALMANIP_PER_FILE` rows each (CPU).
Nothing here is written into the repository; the output folder is the caller's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from guard.training.split import _bucket

SEED = 13  # the recipe's seed and validation fraction (models/answer_manipulation/recipe.yaml)
FRACTION = 0.2
MENTALMANIP_PER_FILE = 80
MENTALMANIP = {"Intimidation": "fear_appeal", "Playing Victim Role": "guilt_tripping",
               "Shaming or Belittlement": "guilt_tripping", "Denial": "gaslighting", "Feigning Innocence": "gaslighting"}
DARKPATTERNS = {"Urgency": "urgency", "Social Proof": "social_proof"}


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def build(data_dir: Path, shared: Path, out: Path) -> dict[str, int]:
    files: dict[str, list[dict[str, object]]] = {}

    def add(name: str, text: object, label: int) -> None:
        files.setdefault(name, []).append({"text": text, "label": label, "category": "manipulation" if label else "benign"})

    dataset = "manipulation_answers_handwritten"
    for row in _lines(data_dir / f"{dataset}.jsonl"):
        if _bucket(SEED, f"{dataset}:g:{row['group']}") >= FRACTION:
            continue
        techniques = row.get("techniques") or []
        if row["label"] == 1 and isinstance(techniques, list):
            add(f"handwritten_{techniques[0]}", row["text"], 1)
        else:
            add("handwritten_hard_negatives", row["text"], 0)
    for row in _lines(shared / "ec_darkpatterns" / "train.jsonl"):
        techniques = row.get("techniques") or []
        if row["label"] == 0:
            add("darkpatterns_benign", row["text"], 0)
        elif isinstance(techniques, list) and techniques and techniques[0] in DARKPATTERNS:
            add(f"darkpatterns_{DARKPATTERNS[str(techniques[0])]}", row["text"], 1)
    for row in _lines(shared / "mentalmanip_dialogues" / "train.jsonl"):
        techniques = row.get("techniques") or []
        if row["label"] == 0:
            name = "mentalmanip_benign"
        elif isinstance(techniques, list) and len(techniques) == 1 and techniques[0] in MENTALMANIP:
            name = f"mentalmanip_{MENTALMANIP[str(techniques[0])]}"
        else:
            continue
        if len(files.get(name, [])) < MENTALMANIP_PER_FILE:
            add(name, row["text"], int(row["label"] == 1))
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for entry in rows:
                handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return {name: len(rows) for name, rows in sorted(files.items())}


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print("usage: python -m guard.training.manipulation_eval DATA_DIR SHARED_DATASETS OUT_DIR", file=sys.stderr)
        raise SystemExit(2)
    print(build(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
