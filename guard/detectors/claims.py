"""Similarity to a database of debunked claims (`kind: claims`), for model output.

The database is JSONL, one claim a line: `{"id", "claim", "source"}` (plus optional `dataset`, `licence`).
The shipped one, `models/claims/claims.jsonl`, holds permissively licensed false claims, each with its
source; users extend it with their own files (`extra_claims: [/etc/guard/our-claims.jsonl]`). Each
sentence of a text is normalised, encoded through the shared encoder, and compared (cosine) with every
claim. Without a stance head, a sentence at or above the validated similarity threshold yields a finding;
with one (`stance:` in the model config, `stance.py`), a sentence at least `gate` close to its nearest claim
is scored by whether it *asserts* that claim, so a correct answer that refutes a myth is not flagged. The
finding's `label` is the matched claim's id, its reason names the claim's source, its span is the sentence. Embeddings of the shipped claims are precomputed in
`embeddings.npz` (keyed by the sha256 of each claim's text); claims not in it are encoded at load.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from guard.detectors.base import DetectorResources
from guard.detectors.config import DetectorConfigBase
from guard.detectors.encoder import Embeddings, EncoderSpec, SharedEncoder, file_sha256
from guard.detectors.normalize import TextNormalizer
from guard.detectors.stance import StanceHead, StanceRef, pair_features
from guard.errors import ConfigError, DetectorError
from guard.training.head import calibrate
from guard.types import Category, Finding, ScanContext, Span

DEFAULT_CLAIMS_DIR = Path(__file__).resolve().parents[2] / "models" / "claims"
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")
_MIN_SENTENCE_CHARS = 12


class ClaimsModelConfig(BaseModel):
    """`models/claims/config.yaml`: the database file, its validated threshold and the encoder."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str
    database: str = "claims.jsonl"
    embeddings: str = "embeddings.npz"
    threshold: Annotated[float, Field(gt=0, lt=1)]  # cosine similarity
    encoder: EncoderSpec
    # With a stance head, a sentence near a claim is flagged only when it asserts it (`stance.py`).
    stance: StanceRef | None = None


class ClaimsConfig(DetectorConfigBase):
    kind: Literal["claims"]
    model_dir: Path = DEFAULT_CLAIMS_DIR
    extra_claims: list[Path] = Field(default_factory=list)
    min_similarity: Annotated[float, Field(gt=0, lt=1)] | None = None  # None: the validated threshold
    # Calibrated: 0.5 is the validated operating point. Lower it to use `low` bands below that point.
    min_score: Annotated[float, Field(ge=0, le=1)] = 0.5
    encoder: EncoderSpec | None = None

    _model: ClaimsModelConfig | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _read_model(self) -> ClaimsConfig:
        path = self.model_dir / "config.yaml"
        try:
            self._model = ClaimsModelConfig.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except OSError:
            raise ValueError(f"claims model config {path} cannot be read") from None
        except (yaml.YAMLError, ValidationError) as exc:
            raise ValueError(f"claims model config {path} is invalid ({type(exc).__name__})") from None
        for extra in self.extra_claims:
            if not extra.is_file():
                raise ValueError(f"extra_claims file {extra} does not exist")
        return self

    def model(self) -> ClaimsModelConfig:
        if self._model is None:  # pragma: no cover - set by the validator
            raise ConfigError("claims config used before validation")
        return self._model

    def threshold(self) -> float:
        return self.min_similarity if self.min_similarity is not None else self.model().threshold

    def categories(self) -> frozenset[Category]:
        return frozenset({Category.DISINFORMATION})


@dataclass(frozen=True, slots=True)
class Claim:
    id: str
    claim: str
    source: str


def read_claims(path: Path) -> list[Claim]:
    claims = []
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            claims.append(Claim(id=str(raw["id"]), claim=str(raw["claim"]), source=str(raw["source"])))
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ConfigError(f"{path}:{number}: a claim line is {{\"id\", \"claim\", \"source\"}}") from None
    return claims


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def sentences(text: str) -> list[tuple[int, int]]:
    """Sentence spans; text with no sentence of useful length is one span."""
    spans = [(m.start(), m.end()) for m in _SENTENCE.finditer(text) if len(m.group().strip()) >= _MIN_SENTENCE_CHARS]
    return spans or [(0, len(text))]


class ClaimsDetector:
    """Nearest debunked claim per sentence. See the module docstring."""

    def __init__(self, config: ClaimsConfig) -> None:
        self.config = config
        self.name = config.name
        self.categories = config.categories()
        digest = hashlib.sha256(config.model_dump_json().encode())
        digest.update(config.model().model_dump_json().encode())
        for extra in config.extra_claims:
            digest.update(extra.read_bytes())
        self.version = digest.hexdigest()[:12]
        self._claims: list[Claim] = []
        self._matrix: Embeddings | None = None
        self._encoder: SharedEncoder | None = None
        self._normalizer: TextNormalizer | None = None
        self._stance: StanceHead | None = None

    async def load(self, resources: DetectorResources) -> None:
        model = self.config.model()
        claims = read_claims(self.config.model_dir / model.database)
        for extra in self.config.extra_claims:
            claims.extend(read_claims(extra))
        if not claims:
            raise DetectorError(f"detector '{self.name}': the claims database is empty")
        encoder = resources.encoders.get(self.config.encoder or model.encoder, resources.torch_threads, resources.executor)
        await encoder.load()
        self._normalizer = TextNormalizer(encoder.vocabulary)
        known: dict[str, np.ndarray] = {}
        shipped = self.config.model_dir / model.embeddings
        # Precomputed vectors are valid only for the encoder they were made with.
        if shipped.is_file() and self.config.encoder in (None, model.encoder):
            with np.load(shipped, allow_pickle=False) as data:
                known = dict(zip(data["keys"].tolist(), data["vectors"].astype(np.float32), strict=True))
        texts = [self._normalizer(c.claim) for c in claims]
        keys = [text_key(t) for t in texts]
        missing = [i for i, k in enumerate(keys) if k not in known]
        if missing:
            fresh = await encoder.embed([texts[i] for i in missing])
            for i, vector in zip(missing, fresh, strict=True):
                known[keys[i]] = vector
        self._claims = claims
        matrix = np.stack([known[k] for k in keys]).astype(np.float32)
        self._matrix = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
        self._encoder = encoder
        if model.stance is not None:
            path = self.config.model_dir / model.stance.file
            if not path.is_file() or file_sha256(path) != model.stance.sha256:
                raise DetectorError(f"detector '{self.name}': {path} is missing or does not match its pinned sha256")
            self._stance = StanceHead.load(path)

    async def detect(self, texts: Sequence[str], ctx: ScanContext) -> Sequence[Sequence[Finding]]:
        if self._encoder is None or self._matrix is None or self._normalizer is None:
            raise DetectorError(f"detector '{self.name}' used before load()")
        per_text = [sentences(t) for t in texts]
        flat = [self._normalizer(t[s:e]) for t, spans in zip(texts, per_text, strict=True) for s, e in spans]
        vectors = await self._encoder.embed(flat, ctx.deadline)
        similarities = vectors @ self._matrix.T
        nearest = similarities.argmax(axis=1)
        cosines = similarities[np.arange(len(flat)), nearest].astype(np.float32)
        scores = self._scores(vectors, nearest, cosines)
        results: list[list[Finding]] = []
        offset = 0
        for spans in per_text:
            block = slice(offset, offset + len(spans))
            offset += len(spans)
            best = int(np.argmax(scores[block]))
            score = float(scores[block][best])
            if score < self.config.min_score:
                results.append([])
                continue
            claim = self._claims[int(nearest[block][best])]
            cosine = float(cosines[block][best])
            start, end = spans[best]
            how = "asserts" if self._stance is not None else "close to"
            results.append([
                Finding(
                    detector=self.name,
                    detector_version=self.version,
                    category=Category.DISINFORMATION,
                    score=round(min(1.0, score), 4),
                    span=Span(start, end, "debunked_claim"),
                    label=claim.id,
                    reason=f"sentence {how} debunked claim {claim.id} (cosine {cosine:.2f}; source {claim.source})",
                )
            ])
        return results

    def _scores(self, vectors: Embeddings, nearest: np.ndarray, cosines: np.ndarray) -> np.ndarray:
        """Calibrated score per sentence: its stance towards the nearest claim when a stance head is
        shipped (sentences below the gate score 0), else the similarity itself."""
        ref = self.config.model().stance
        if self._stance is None or self._matrix is None or ref is None:
            return calibrate(np.maximum(cosines, 0.0), self.config.threshold())
        gate = self.config.min_similarity if self.config.min_similarity is not None else ref.gate
        out = np.zeros(len(cosines), dtype=np.float32)
        passed = np.nonzero(cosines >= gate)[0]
        if passed.size:
            asserts = self._stance.asserts(pair_features(self._matrix[nearest[passed]], vectors[passed]))
            out[passed] = calibrate(asserts, ref.threshold)
        return out

    async def aclose(self) -> None:
        self._matrix = None
