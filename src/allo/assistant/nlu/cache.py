"""Query embeddings cached on disk by content, so that retraining does not re-embed.

Each vector is one ``.npy`` file named by the sha256 of the embedder's name, the encoding
(query or passage) and the exact text, under ``cache_dir/<first two hex digits>/``.
Files are written atomically (temp file + rename): a kill never leaves half a vector,
and an unreadable file is simply recomputed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from allo.knowledge.index.embedding import Embedder, Matrix


def embedding_key(model: str, text: str, kind: str = "query") -> str:
    """sha256 of the model name, the encoding and the text."""
    return hashlib.sha256(f"{model}\x00{kind}\x00{text}".encode()).hexdigest()


class CachedQueryEmbedder:
    """``embed_queries`` of an embedder, through an on-disk cache (``None``: no cache)."""

    def __init__(self, embedder: Embedder, cache_dir: Path | None, batch: int = 512) -> None:
        self.embedder = embedder
        self.cache_dir = cache_dir
        self.batch = batch
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        """The wrapped embedder's name."""
        return self.embedder.name

    def _path(self, key: str) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / key[:2] / f"{key}.npy"

    def _load(self, key: str) -> Matrix | None:
        try:
            vector = np.load(self._path(key), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if vector.shape != (self.embedder.dim,):
            return None
        loaded: Matrix = vector.astype(np.float32, copy=False)
        return loaded

    def _store(self, key: str, vector: Matrix) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, np.asarray(vector, dtype=np.float32))
            os.replace(tmp, path)
        except OSError:
            return  # a cache that cannot be written only costs time

    def embed(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> Matrix:
        """(len(texts), dim) query vectors; ``progress(n)`` after each computed batch."""
        unique = list(dict.fromkeys(texts))
        vectors: dict[str, Matrix] = {}
        missing: list[str] = []
        keys = {text: embedding_key(self.embedder.name, text) for text in unique}
        for text in unique:
            cached = self._load(keys[text]) if self.cache_dir is not None else None
            if cached is None:
                missing.append(text)
            else:
                vectors[text] = cached
        self.hits += len(unique) - len(missing)
        self.misses += len(missing)
        if progress is not None and len(unique) > len(missing):
            progress(len(unique) - len(missing))
        for start in range(0, len(missing), self.batch):
            chunk = missing[start : start + self.batch]
            computed = self.embedder.embed_queries(chunk)
            for text, vector in zip(chunk, computed, strict=True):
                vectors[text] = vector
                if self.cache_dir is not None:
                    self._store(keys[text], vector)
            if progress is not None:
                progress(len(chunk))
        if not texts:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        return np.vstack([vectors[text] for text in texts]).astype(np.float32)
