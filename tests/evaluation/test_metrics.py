"""Ranking metrics on hand-computed cases."""

from __future__ import annotations

import math

from allo.evaluation.metrics import rank_of, ranking_metrics


def test_rank_of() -> None:
    assert rank_of(["a", "b", "c"], "b") == 2
    assert rank_of(["a"], "z") is None


def test_ranking_metrics() -> None:
    metrics = ranking_metrics([1, 3, None, 12], k=10)
    assert metrics["recall@1"] == 0.25
    assert metrics["recall@5"] == 0.5
    assert metrics["recall@10"] == 0.5
    assert metrics["mrr@10"] == round((1 + 1 / 3) / 4, 4)
    assert metrics["ndcg@10"] == round((1 + 1 / math.log2(4)) / 4, 4)
    assert metrics["n"] == 4


def test_empty() -> None:
    assert ranking_metrics([])["n"] == 0
