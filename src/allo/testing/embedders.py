"""A deterministic embedder for tests: no model, words hashed into a fixed-size vector.

Texts sharing words get similar vectors, so retrieval behaves sensibly; ``delay``
seconds per batch make ingestion slow enough to interrupt it in crash tests.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

import numpy as np

from allo.knowledge.index.analysis import FrenchAnalyzer
from allo.knowledge.index.embedding import Matrix


class FakeEmbedder:
    """Hashed bag of stems, L2-normalised; queries and passages encoded alike."""

    name = "fake-hashing-64"

    def __init__(self, dim: int = 64, delay: float = 0.0) -> None:
        self.dim = dim
        self.delay = delay
        self.calls = 0
        self.embedded_texts = 0
        self._analyzer = FrenchAnalyzer()

    def warm_up(self) -> None:
        """Nothing to load."""

    def _vector(self, text: str) -> Matrix:
        vector = np.zeros(self.dim, dtype=np.float32)
        for token in self._analyzer.tokens(text):
            digest = hashlib.blake2b(token.encode(), digest_size=4).digest()
            vector[int.from_bytes(digest, "little") % self.dim] += 1.0
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            vector[0] = 1.0
            return vector
        return vector / norm

    def _encode(self, texts: Sequence[str]) -> Matrix:
        self.calls += 1
        self.embedded_texts += len(texts)
        if self.delay:
            time.sleep(self.delay)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([self._vector(text) for text in texts]).astype(np.float32)

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        """Same encoding as passages."""
        return self._encode(texts)

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        """Hashed stems of each text."""
        return self._encode(texts)
