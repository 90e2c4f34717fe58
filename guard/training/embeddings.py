"""Embeddings of training texts, cached on disk so a re-run of `guard train` does not re-encode.

The cache file name is a digest of the encoder pin, the normalisation and the texts themselves, so any
change to one of them misses the cache. The cache holds vectors only, never text (default `.cache/`,
which git ignores).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from guard.detectors.encoder import Embeddings, SentenceEncoder

NORMALIZATION_VERSION = "2"
DEFAULT_CACHE_DIR = Path(".cache/guard-embeddings")


def _store_path(encoder: SentenceEncoder, cache_dir: Path) -> Path:
    key = hashlib.sha256((encoder.spec.model_dump_json() + NORMALIZATION_VERSION).encode()).hexdigest()[:24]
    return cache_dir / f"store-{key}.npz"


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def embed_texts(
    encoder: SentenceEncoder,
    texts: list[str],
    normalize: Callable[[str], str],
    cache_dir: Path = DEFAULT_CACHE_DIR,
    chunk: int = 64,
    description: str = "encoding",
) -> Embeddings:
    """Normalised, encoded `texts` (n, dim), with a tqdm bar on stderr while encoding.

    One store per encoder pin, keyed by the digest of each *normalised* text, so a text shared by two
    recipes (or an obfuscated variant that normalises back to a known text) is encoded once."""
    path = _store_path(encoder, cache_dir)
    known: dict[str, Embeddings] = {}
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            known = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
    normalized = [normalize(t) for t in texts]
    keys = [_text_key(t) for t in normalized]
    missing = sorted({k: i for i, k in enumerate(keys) if k not in known}.values(), key=lambda i: len(normalized[i]))
    if missing:
        with tqdm(total=len(missing), desc=description, unit="text", leave=False) as bar:
            for start in range(0, len(missing), chunk):
                picked = missing[start : start + chunk]
                for index, vector in zip(picked, encoder.encode_many([normalized[i] for i in picked]), strict=True):
                    known[keys[index]] = vector
                bar.update(len(picked))
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp.npz")
        with partial.open("wb") as handle:
            np.savez(handle, keys=np.array(list(known)), vectors=np.stack(list(known.values())))
        partial.replace(path)
    out: Embeddings = np.stack([known[k] for k in keys]).astype(np.float32)
    return out
