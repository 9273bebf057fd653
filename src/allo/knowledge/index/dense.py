"""Nearest-neighbour search over embeddings: exact for small sets, HNSW past a threshold.

Exact search is one matrix-vector product (about 2 ms for 50k x 384 on one core) and is
always right; usearch's HNSW takes over above ``ann_threshold`` vectors, where the exact
product would dominate query time (see docs/retrieval.md for the measured crossover).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from allo.knowledge.index.ranking import top_k

Matrix = npt.NDArray[np.float32]


class DenseIndex:
    """Cosine similarity search over L2-normalised vectors numbered 0..n-1."""

    def __init__(self, ann_threshold: int = 200_000) -> None:
        self.ann_threshold = ann_threshold
        self._vectors: Matrix = np.zeros((0, 0), dtype=np.float32)
        self._ann: object | None = None

    @property
    def size(self) -> int:
        """How many vectors are indexed."""
        return int(self._vectors.shape[0])

    @property
    def uses_ann(self) -> bool:
        """Whether searches go through the HNSW graph rather than the exact product."""
        return self._ann is not None

    def build(self, vectors: Matrix) -> None:
        """Index ``vectors`` (rows), replacing what was there."""
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._ann = None
        if self.size >= self.ann_threshold:
            from usearch.index import Index

            index = Index(
                ndim=self._vectors.shape[1],
                metric="ip",
                dtype="f32",
                connectivity=32,
                expansion_add=128,
                expansion_search=128,
            )
            index.add(np.arange(self.size, dtype=np.uint64), self._vectors, threads=0)
            self._ann = index

    def scores(self, query: Matrix) -> Matrix:
        """Exact cosine similarity of ``query`` with every vector."""
        if self.size == 0:
            return np.zeros(0, dtype=np.float32)
        return self._vectors @ query

    def similarity(self, query: Matrix, position: int) -> float:
        """Cosine of ``query`` with one indexed vector."""
        return float(self._vectors[position] @ query)

    def search(self, query: Matrix, k: int) -> list[tuple[int, float]]:
        """The ``k`` most similar (number, cosine) pairs, best first."""
        if self.size == 0:
            return []
        if self._ann is not None:
            matches = self._ann.search(query, min(k, self.size))  # type: ignore[attr-defined]
            return [
                (int(key), float(1.0 - distance))
                for key, distance in zip(matches.keys, matches.distances, strict=True)
            ]
        return top_k(self.scores(query), k)
