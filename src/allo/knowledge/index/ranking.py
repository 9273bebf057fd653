"""Picking the best items of a score vector, shared by every index."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Scores = npt.NDArray[np.float32]


def top_k(
    scores: Scores,
    k: int,
    exclude: frozenset[int] = frozenset(),
    *,
    positive_only: bool = False,
) -> list[tuple[int, float]]:
    """The ``k`` highest (position, score) pairs, best first, leaving out ``exclude``.

    ``positive_only`` drops non-positive scores: for BM25 they mean "no term matched".
    A partial sort (argpartition) keeps this linear in the collection size.
    """
    if scores.size == 0 or k <= 0:
        return []
    if exclude:
        scores = scores.copy()
        scores[list(exclude)] = -np.inf
    k = min(k, scores.size)
    candidates = np.argpartition(-scores, k - 1)[:k]
    ordered = candidates[np.argsort(-scores[candidates], kind="stable")]
    floor = 0.0 if positive_only else -np.inf
    return [(int(i), float(scores[i])) for i in ordered if scores[i] > floor]
