"""Embedding geometry for intents: centring, and similarity to the nearest training example.

Sentence embeddings of a small model share a large common component (on CLINC150 the
mean e5 query vector has norm 0.9 while every vector has norm 1), so raw cosine
similarities are all high and a linear model sees mostly that shared direction.
Subtracting the training mean and re-normalising spreads the vectors out: on inner
folds of CLINC150's training data it raised in-scope accuracy of the linear SVM by
about half a point.

The same centred vectors give a second, independent out-of-scope signal: how close a
message is to the nearest training example of the intent the classifier chose. A
message far from every example of its intent is likely out of scope even when the SVM
is confident, because a linear score grows without bound away from the boundary.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from allo.knowledge.index.embedding import Matrix


class Centring:
    """Subtract the training mean, then L2-normalise each row again."""

    def __init__(self) -> None:
        self.mean: Matrix | None = None

    def fit(self, vectors: Matrix) -> Centring:
        """Remember the mean of the training vectors."""
        self.mean = vectors.mean(axis=0).astype(np.float32)
        return self

    def transform(self, vectors: Matrix) -> Matrix:
        """Centred, unit-norm rows (a row equal to the mean stays zero)."""
        if self.mean is None:
            raise RuntimeError("call fit() before transform()")
        centred = vectors - self.mean
        norms = np.linalg.norm(centred, axis=1, keepdims=True)
        result: Matrix = (centred / np.maximum(norms, 1e-12)).astype(np.float32)
        return result


class NearestExamples:
    """Cosine similarity of vectors to the nearest training example of each intent."""

    def __init__(self, batch: int = 512) -> None:
        self.batch = batch
        self._vectors: Matrix | None = None
        self._labels: list[str] = []
        self._starts = np.zeros(0, dtype=np.intp)

    def fit(self, vectors: Matrix, labels: Sequence[str]) -> NearestExamples:
        """Remember unit-norm ``vectors``, grouped by their label."""
        if len(vectors) != len(labels):
            raise ValueError(f"{len(vectors)} vectors but {len(labels)} labels")
        if not len(labels):
            raise ValueError("no training example to compare with")
        names = np.asarray([str(label) for label in labels])
        order = np.argsort(names, kind="stable")
        self._vectors = np.ascontiguousarray(vectors[order], dtype=np.float32)
        self._labels, self._starts = _groups(names[order])
        return self

    def by_intent(self, vectors: Matrix, intents: Sequence[str]) -> np.ndarray:
        """``(len(vectors), len(intents))`` best similarities; -1 for an intent never seen."""
        if self._vectors is None:
            raise RuntimeError("call fit() before by_intent()")
        column = {label: i for i, label in enumerate(self._labels)}
        wanted = np.asarray([column.get(intent, -1) for intent in intents], dtype=np.intp)
        result = np.full((len(vectors), len(intents)), -1.0)
        known = wanted >= 0
        for start in range(0, len(vectors), self.batch):
            sims = vectors[start : start + self.batch] @ self._vectors.T
            per_label = np.maximum.reduceat(sims, self._starts, axis=1)
            result[start : start + len(sims), known] = per_label[:, wanted[known]]
        return result


def _groups(sorted_labels: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The distinct labels of a sorted array and the index where each one starts."""
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    return [str(label) for label in sorted_labels[starts]], starts.astype(np.intp)
