"""Ranking metrics with one relevant item per query (as in PIAF: one gold paragraph)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def rank_of(ranking: Sequence[str], gold: str) -> int | None:
    """1-based rank of ``gold`` in ``ranking``, or ``None`` when it is absent."""
    for rank, item in enumerate(ranking, start=1):
        if item == gold:
            return rank
    return None


def ranking_metrics(ranks: Sequence[int | None], k: int = 10) -> dict[str, float]:
    """recall@1/5/k, MRR@k and nDCG@k (binary relevance, one relevant item) over queries."""
    n = len(ranks)
    if n == 0:
        return {
            "recall@1": 0.0,
            "recall@5": 0.0,
            f"recall@{k}": 0.0,
            f"mrr@{k}": 0.0,
            f"ndcg@{k}": 0.0,
            "n": 0,
        }

    def recall(cut: int) -> float:
        return sum(1 for rank in ranks if rank is not None and rank <= cut) / n

    mrr = sum(1.0 / rank for rank in ranks if rank is not None and rank <= k) / n
    ndcg = sum(1.0 / math.log2(rank + 1) for rank in ranks if rank is not None and rank <= k) / n
    return {
        "recall@1": round(recall(1), 4),
        "recall@5": round(recall(5), 4),
        f"recall@{k}": round(recall(k), 4),
        f"mrr@{k}": round(mrr, 4),
        f"ndcg@{k}": round(ndcg, 4),
        "n": n,
    }
