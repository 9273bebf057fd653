"""Exact and HNSW vector search agree; reciprocal rank fusion rewards agreement."""

from __future__ import annotations

import numpy as np

from allo.knowledge.index.dense import DenseIndex
from allo.knowledge.index.fusion import reciprocal_rank_fusion


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    unit: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit


def test_exact_search_finds_the_nearest() -> None:
    vectors = _unit(500, 32, 1)
    index = DenseIndex()
    index.build(vectors)
    query = vectors[42] + 0.01 * _unit(1, 32, 2)[0]
    hits = index.search(query / np.linalg.norm(query), 3)
    assert hits[0][0] == 42
    assert hits[0][1] > 0.99
    assert not index.uses_ann


def test_ann_agrees_with_exact_search() -> None:
    vectors = _unit(3000, 48, 3)
    queries = _unit(50, 48, 4)
    exact = DenseIndex(ann_threshold=10**9)
    exact.build(vectors)
    approximate = DenseIndex(ann_threshold=1000)
    approximate.build(vectors)
    assert approximate.uses_ann
    overlap = 0
    for query in queries:
        truth = {i for i, _ in exact.search(query, 10)}
        found = approximate.search(query, 10)
        overlap += len(truth & {i for i, _ in found})
        for item, score in found:  # scores are the true cosines of the items returned
            assert abs(score - float(vectors[item] @ query)) < 1e-4
    assert overlap / (10 * len(queries)) >= 0.9


def test_rrf_prefers_items_both_lists_rank_well() -> None:
    fused = reciprocal_rank_fusion(
        {"lexical": [(1, 9.0), (2, 8.0), (3, 7.0)], "dense": [(2, 0.9), (4, 0.8), (1, 0.7)]}, k=60
    )
    assert fused[0][0] == 2
    assert {item for item, _ in fused} == {1, 2, 3, 4}
    assert [score for _, score in fused] == sorted((score for _, score in fused), reverse=True)


def test_rrf_weights() -> None:
    fused = reciprocal_rank_fusion({"a": [(1, 1.0)], "b": [(2, 1.0)]}, weights={"a": 1.0, "b": 2.0})
    assert fused[0][0] == 2
