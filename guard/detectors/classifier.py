"""Classifier heads over one shared sentence encoder (`kind: classifier`).

A policy names heads shipped in `models/<name>/` (or a path to a head folder):

    detectors:
      - {kind: classifier, name: injection, heads: [prompt_injection]}
      - {kind: classifier, name: manipulation, heads: [fallacy, influence_ops]}

Each head folder holds `config.yaml` (category, classes, threshold, pinned encoder and sha256 of both the
encoder weights and the head file), `head.npz` and `card.md`. The policy may point the heads at another
encoder (`encoder: {model: /models/my-minilm, sha256: ...}` or `backend: onnx`), loaded with
`from_pretrained`. A binary head may also ship a lexical model (`lexical.npz`, hashed n-grams of the
normalised whole text, pinned by sha256 like the head) whose score is fused with the best window's
(`guard/training/lexical.py`); the head's threshold applies to the fused score. Per text: overlapping token windows of the original text are normalised
(`normalize.py`), encoded once through the shared, micro-batched encoder, and every head scores every
window; a text's finding per head comes from its highest-scoring window, and its span is that window's
offsets in the original text (the whole text when it fits one window). Scores are calibrated so 0.5 is
the head's validated operating point; `label` names the technique for technique heads, else the head.
Encoded payloads (base64, hex, URL encoding, ROT13, leetspeak; `deobfuscate.py`) are decoded and scored
too: a head's finding is the strongest of the text and its decoded variants, and one from a variant spans
the encoded characters of the original text.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from guard.detectors.base import DetectorResources
from guard.detectors.config import DetectorConfigBase
from guard.detectors.deadline import check as check_deadline
from guard.detectors.deadline import segments
from guard.detectors.deobfuscate import decoded_variants
from guard.detectors.encoder import EncoderSpec, SharedEncoder, file_sha256
from guard.detectors.normalize import TextNormalizer
from guard.errors import ConfigError, DetectorError
from guard.training.head import HeadWeights, calibrate
from guard.training.lexical import LexicalModel, LexicalSpec, LexicalWeights
from guard.training.windows import window_shape
from guard.types import Category, Finding, ScanContext, Span

DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
# Texts shorter than this are windowed on the event loop; longer ones in the executor.
_INLINE_CHARS = 16_384
# A long text is windowed in segments of _INLINE_CHARS overlapping by this much (several windows' worth
# of characters), so no window of the whole text is lost at a segment's edge.
_SEGMENT_OVERLAP = 2_048


class HeadFileRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class LexicalRef(LexicalSpec):
    """The lexical model fused into a binary head: its weights file, pinned, and how texts are hashed."""

    file: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class HeadConfig(BaseModel):
    """`models/<name>/config.yaml`, as `guard train` writes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    version: str
    category: Category
    mode: Literal["binary", "techniques"]
    classes: list[str] = Field(min_length=2)
    threshold: Annotated[float, Field(gt=0, lt=1)]
    window_tokens: int
    stride_tokens: int
    head: HeadFileRef
    lexical: LexicalRef | None = None  # binary heads only: fused with the embedding score
    encoder: EncoderSpec
    trained_on: list[dict[str, str]] = Field(default_factory=list)


def read_head_config(folder: Path) -> HeadConfig:
    path = folder / "config.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return HeadConfig.model_validate(raw)
    except OSError:
        raise ConfigError(f"classifier head '{folder}': {path} cannot be read") from None
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"classifier head '{folder}': {path} is not a valid head config ({type(exc).__name__})") from None


class ClassifierConfig(DetectorConfigBase):
    kind: Literal["classifier"]
    heads: list[str] = Field(min_length=1)
    models_dir: Path = DEFAULT_MODELS_DIR
    encoder: EncoderSpec | None = None  # None: the encoder the heads pin
    # Calibrated: 0.5 is the validated operating point. Lower it to use `low` bands below that point.
    min_score: Annotated[float, Field(ge=0, le=1)] = 0.5

    _head_configs: list[HeadConfig] = PrivateAttr(default_factory=list)

    def head_dir(self, head: str) -> Path:
        return Path(head) if "/" in head else self.models_dir / head

    @model_validator(mode="after")
    def _read_heads(self) -> ClassifierConfig:
        configs = []
        for head in self.heads:
            try:
                configs.append(read_head_config(self.head_dir(head)))
            except ConfigError as exc:
                raise ValueError(f"{exc}; heads are folder names under models_dir ({self.models_dir}) or paths") from None
        pinned = {c.encoder for c in configs}
        if self.encoder is None and len(pinned) > 1:
            raise ValueError("heads of one classifier must pin the same encoder (one forward pass serves them all); "
                             "split them into two classifier detectors or set `encoder:`")
        self._head_configs = configs
        return self

    def head_configs(self) -> list[HeadConfig]:
        return list(self._head_configs)

    def encoder_spec(self) -> EncoderSpec:
        return self.encoder or self._head_configs[0].encoder

    def categories(self) -> frozenset[Category]:
        return frozenset(c.category for c in self._head_configs)


@dataclass(frozen=True, slots=True)
class LoadedHead:
    config: HeadConfig
    weights: HeadWeights
    lexical: LexicalModel | None = None


@dataclass(frozen=True, slots=True)
class Window:
    start: int
    end: int
    text: str  # normalised


def _pinned(folder: Path, config: HeadConfig, file: str, sha256: str) -> Path:
    path = folder / file
    if not path.is_file():
        raise DetectorError(f"classifier head '{config.name}': {file} is missing")
    if file_sha256(path) != sha256:
        raise DetectorError(f"classifier head '{config.name}': {file} does not match its pinned sha256")
    return path


def load_head(folder: Path, config: HeadConfig) -> LoadedHead:
    weights = HeadWeights.load(_pinned(folder, config, config.head.file, config.head.sha256))
    if config.lexical is None:
        return LoadedHead(config, weights)
    if config.mode != "binary":
        raise DetectorError(f"classifier head '{config.name}': a lexical model needs a binary head")
    ref = config.lexical
    spec = LexicalSpec.model_validate(ref.model_dump(exclude={"file", "sha256"}))
    try:
        lexical = LexicalWeights.load(_pinned(folder, config, ref.file, ref.sha256), spec)
    except (KeyError, ValueError) as exc:
        raise DetectorError(f"classifier head '{config.name}': {ref.file} is not a lexical model ({exc})") from None
    try:
        model = LexicalModel(lexical)
    except ImportError:
        raise DetectorError(f"classifier head '{config.name}': its lexical model needs scikit-learn installed") from None
    return LoadedHead(config, weights, model)


class TextWindows:
    """Overlapping windows of the original text, each normalised for the encoder."""

    def __init__(self, encoder: SharedEncoder) -> None:
        self._encoder = encoder
        self._normalizer = TextNormalizer(encoder.vocabulary)
        # A text that fits the encoder is scored whole. A longer one is cut into quarter-size windows, 3/4
        # a window apart: a short injection inside a long document is diluted less in a short window.
        # Training (`guard/training/windows.py`) cuts the same windows.
        self.whole_tokens, self.window_tokens, self.stride_tokens = window_shape(encoder.encoder.spec.max_tokens)

    def split(self, text: str, untrusted: bool = False) -> list[Window]:
        if untrusted:
            # Untrusted content (a tool result, a retrieved document; issue 10): windows even when the text
            # fits whole, so an instruction planted in a short email is scored on its own, not diluted.
            spans = self._encoder.encoder.token_windows(text, self.window_tokens, self.window_tokens, self.stride_tokens)
            if len(spans) > 1:
                spans = [(0, len(text)), *spans]
        else:
            spans = self._encoder.encoder.token_windows(text, self.whole_tokens, self.window_tokens, self.stride_tokens)
        return [Window(s, e, self._normalizer(text[s:e])) for s, e in spans]

    async def split_all(
        self,
        texts: Sequence[str],
        resources: DetectorResources,
        untrusted: Sequence[bool] = (),
        deadline: float | None = None,
    ) -> list[list[Window]]:
        """Windows of every text (untrusted ones windowed even when short, see `split`). Short batches are
        windowed inline; longer ones in executor jobs of at most `_INLINE_CHARS` characters each (a long
        text in overlapping segments), with the deadline checked between jobs, so a huge text neither
        holds the tokenizer for seconds nor outlives its budget (`guard.detectors.deadline`)."""
        flags = [bool(untrusted[i]) if i < len(untrusted) else False for i in range(len(texts))]
        if sum(len(t) for t in texts) <= _INLINE_CHARS:
            return [self.split(t, u) for t, u in zip(texts, flags, strict=True)]
        loop = asyncio.get_running_loop()
        out: list[list[Window]] = [[] for _ in texts]
        for job in _jobs(texts, _SEGMENT_OVERLAP):
            check_deadline(deadline)
            pieces = [(piece, flags[index]) for index, _, piece in job]
            found = await loop.run_in_executor(resources.executor, self._split_many, pieces)
            for (index, offset, _), windows in zip(job, found, strict=True):
                out[index].extend(Window(w.start + offset, w.end + offset, w.text) for w in windows)
        return out

    def _split_many(self, pieces: list[tuple[str, bool]]) -> list[list[Window]]:
        return [self.split(piece, untrusted) for piece, untrusted in pieces]

    def _normalize_many(self, pieces: list[str]) -> list[str]:
        return [self._normalizer(piece) for piece in pieces]

    def whole(self, text: str, windows: list[Window]) -> str:
        """The normalised whole text (a text scored whole already has it as its one window)."""
        return windows[0].text if len(windows) == 1 else self._normalizer(text)

    async def whole_all(
        self, texts: Sequence[str], windows: list[list[Window]], resources: DetectorResources, deadline: float | None
    ) -> list[str]:
        """`whole` of every text; a long one normalised in executor jobs of whitespace-cut pieces (the
        normaliser collapses whitespace, so the joined pieces read as the whole text normalised)."""
        if sum(len(t) for t in texts) <= _INLINE_CHARS:
            return [self.whole(t, ws) for t, ws in zip(texts, windows, strict=True)]
        loop = asyncio.get_running_loop()
        parts: list[list[str]] = [[] for _ in texts]
        for index, (text, text_windows) in enumerate(zip(texts, windows, strict=True)):
            if len(text_windows) == 1:
                parts[index].append(text_windows[0].text)
        for job in _jobs([t if len(ws) > 1 else "" for t, ws in zip(texts, windows, strict=True)], 0):
            check_deadline(deadline)
            pieces = [piece for _, _, piece in job]
            found = await loop.run_in_executor(resources.executor, self._normalize_many, pieces)
            for (index, _, _), normalised in zip(job, found, strict=True):
                parts[index].append(normalised)
        return [" ".join(p.strip() for p in text_parts if p.strip()) for text_parts in parts]


def _jobs(texts: Sequence[str], overlap: int) -> list[list[tuple[int, int, str]]]:
    """(text index, offset, piece) in groups of at most `_INLINE_CHARS` characters: short texts together,
    long ones cut into segments overlapping by `overlap` characters."""
    jobs: list[list[tuple[int, int, str]]] = [[]]
    size = 0
    for index, text in enumerate(texts):
        if not text:
            continue
        for start, end in segments(text, _INLINE_CHARS, overlap):
            if size + end - start > _INLINE_CHARS and jobs[-1]:
                jobs.append([])
                size = 0
            jobs[-1].append((index, start, text[start:end]))
            size += end - start
    return [job for job in jobs if job]


class ClassifierDetector:
    """Scores texts with every configured head over one encoder pass. See the module docstring."""

    def __init__(self, config: ClassifierConfig) -> None:
        self.config = config
        self.name = config.name
        self.categories = config.categories()
        digest = hashlib.sha256(config.model_dump_json().encode())
        for head in config.head_configs():
            digest.update(head.model_dump_json().encode())
        self.version = digest.hexdigest()[:12]
        self._heads: list[LoadedHead] = []
        self._encoder: SharedEncoder | None = None
        self._windows: TextWindows | None = None
        self._resources: DetectorResources | None = None

    async def load(self, resources: DetectorResources) -> None:
        self._heads = [
            load_head(self.config.head_dir(name), head) for name, head in zip(self.config.heads, self.config.head_configs(), strict=True)
        ]
        encoder = resources.encoders.get(self.config.encoder_spec(), resources.torch_threads, resources.executor)
        await encoder.load()
        self._encoder = encoder
        self._windows = TextWindows(encoder)
        self._resources = resources
        await encoder.embed([self._windows.split("warm-up text")[0].text])

    async def detect(self, texts: Sequence[str], ctx: ScanContext) -> Sequence[Sequence[Finding]]:
        if self._encoder is None or self._windows is None or self._resources is None:
            raise DetectorError(f"detector '{self.name}' used before load()")
        variants = [decoded_variants(t) for t in texts]
        untrusted = [ctx.untrusted(i) for i in range(len(texts))]
        if not any(variants):
            return await self._score(texts, untrusted, ctx.deadline)
        # Issue 10: decoded payloads go through the same heads in the same batch as the texts themselves.
        scored = await self._score(
            [*texts, *(v.text for vs in variants for v in vs)],
            [*untrusted, *(untrusted[i] for i, vs in enumerate(variants) for _ in vs)],
            ctx.deadline,
        )
        results = [list(found) for found in scored[: len(texts)]]
        position = len(texts)
        for index, text_variants in enumerate(variants):
            for variant in text_variants:
                for finding in scored[position]:
                    current = next((f for f in results[index] if f.label == finding.label and f.category is finding.category), None)
                    if current is not None and current.score >= finding.score:
                        continue
                    if current is not None:
                        results[index].remove(current)
                    results[index].append(replace(
                        finding, span=Span(variant.start, variant.end, finding.label),
                        reason=f"{finding.reason}, after decoding {variant.encoding} at {variant.start}-{variant.end}",
                    ))
                position += 1
        return results

    async def _score(
        self, texts: Sequence[str], untrusted: Sequence[bool], deadline: float | None
    ) -> list[list[Finding]]:
        assert self._encoder is not None and self._windows is not None and self._resources is not None
        windows = await self._windows.split_all(texts, self._resources, untrusted, deadline)
        flat = [w.text for ws in windows for w in ws]
        vectors = await self._encoder.embed(flat, deadline)
        per_head = [(head, head.weights.probabilities(vectors)) for head in self._heads]
        lexical = await self._lexical_scores(texts, windows, deadline)
        results: list[list[Finding]] = []
        offset = 0
        for index, text_windows in enumerate(windows):
            found: list[Finding] = []
            count = len(text_windows)
            for number, (head, probabilities) in enumerate(per_head):
                scores = lexical[number]
                lexical_score = float(scores[index]) if scores is not None else None
                finding = self._finding(head, probabilities[offset : offset + count], text_windows, lexical_score)
                if finding is not None:
                    found.append(finding)
            results.append(found)
            offset += count
        return results

    async def _lexical_scores(
        self, texts: Sequence[str], windows: list[list[Window]], deadline: float | None
    ) -> list[np.ndarray | None]:
        """Per head: the lexical model's score of each normalised whole text (None for a head without one)."""
        if all(head.lexical is None for head in self._heads):
            return [None] * len(self._heads)
        assert self._windows is not None and self._resources is not None
        whole = await self._windows.whole_all(texts, windows, self._resources, deadline)

        def compute() -> list[np.ndarray | None]:
            return [head.lexical.scores(whole) if head.lexical is not None else None for head in self._heads]

        if sum(len(t) for t in texts) <= _INLINE_CHARS:
            return compute()
        check_deadline(deadline)
        return await asyncio.get_running_loop().run_in_executor(self._resources.executor, compute)

    def _finding(
        self, head: LoadedHead, probabilities: np.ndarray, windows: list[Window], lexical: float | None = None,
    ) -> Finding | None:
        raw = (1.0 - probabilities[:, 0]).astype(np.float32)
        best = int(np.argmax(raw))
        top = raw[best : best + 1]
        if head.lexical is not None and lexical is not None:
            # The text's best window fused with the lexical score of the whole text, as trained.
            top = head.lexical.fuse(top, np.array([lexical], dtype=np.float32))
        score = float(calibrate(top, head.config.threshold)[0])
        if score < self.config.min_score:
            return None
        label = head.config.name
        if head.config.mode == "techniques":
            label = head.config.classes[int(np.argmax(probabilities[best, 1:])) + 1]
        window = windows[best]
        # Always the triggering window's offsets in the original text (issue 10, item 7), so the review
        # console and the audit record show where; a text scored whole spans all of it.
        span = Span(window.start, window.end, head.config.name)
        where = f" in window {best + 1} of {len(windows)}" if len(windows) > 1 else ""
        return Finding(
            detector=self.name,
            detector_version=self.version,
            category=head.config.category,
            score=round(min(1.0, max(0.0, score)), 4),
            span=span,
            label=label,
            reason=f"head '{head.config.name}' scored {score:.2f}{where} (0.5 = validated threshold)",
        )

    async def aclose(self) -> None:
        # The encoder belongs to the app's pool; nothing of our own to release.
        self._heads = []
