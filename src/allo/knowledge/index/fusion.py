"""Fusing ranked lists from several retrievers into one.

Reciprocal rank fusion (Cormack et al., 2009) needs no score calibration: each list
gives ``weight / (k + rank)`` to its items. Measured on PIAF dev against a convex
combination of normalised scores in docs/retrieval.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[tuple[int, float]]],
    *,
    k: int = 60,
    weights: Mapping[str, float] | None = None,
) -> list[tuple[int, float]]:
    """Fuse ``{retriever: [(item, score), ...best first]}`` into one list, best first."""
    fused: dict[int, float] = {}
    for name, ranking in rankings.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        for rank, (item, _score) in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))
