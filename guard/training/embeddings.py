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

NORMALIZATION_VERSION = "1"
DEFAULT_CACHE_DIR = Path(".cache/guard-embeddings")


def embed_texts(
    encoder: SentenceEncoder,
    texts: list[str],
    normalize: Callable[[str], str],
    cache_dir: Path = DEFAULT_CACHE_DIR,
    chunk: int = 64,
    description: str = "encoding",
) -> Embeddings:
    """Normalised, encoded `texts` (n, dim), with a tqdm bar on stderr while encoding."""
    key = hashlib.sha256()
    key.update(encoder.spec.model_dump_json().encode())
    key.update(NORMALIZATION_VERSION.encode())
    for text in texts:
        key.update(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest())
    path = cache_dir / f"{key.hexdigest()[:32]}.npy"
    if path.is_file():
        cached: Embeddings = np.load(path, allow_pickle=False)
        if cached.shape[0] == len(texts):
            return cached
    normalized = [normalize(t) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: len(normalized[i]))
    out = np.zeros((len(texts), 384), dtype=np.float32)
    with tqdm(total=len(texts), desc=description, unit="text", leave=False) as bar:
        for start in range(0, len(order), chunk):
            picked = order[start : start + chunk]
            vectors = encoder.encode_many([normalized[i] for i in picked])
            out[picked] = vectors
            bar.update(len(picked))
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, out, allow_pickle=False)
    return out
