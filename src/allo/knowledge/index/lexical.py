"""BM25 over chunks with bm25s, fed by Allo's French analyzer (stems, folded accents)."""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np
import numpy.typing as npt

from allo.knowledge.index.analysis import FrenchAnalyzer

Scores = npt.NDArray[np.float32]


class LexicalIndex:
    """An immutable BM25 index over texts numbered 0..n-1; rebuild it to change it.

    bm25s stores the scores of every (term, document) pair in a sparse matrix at index
    time, so a query is a sum of a few rows: thousands of queries a second at 50k chunks.
    """

    def __init__(
        self, analyzer: FrenchAnalyzer | None = None, *, k1: float = 1.2, b: float = 0.75
    ) -> None:
        self.analyzer = analyzer or FrenchAnalyzer()
        self.k1 = k1
        self.b = b
        self._model: bm25s.BM25 | None = None
        self._vocabulary: dict[str, int] = {}
        self.size = 0

    def build(self, texts: Sequence[str]) -> None:
        """Index ``texts`` (their position is their number)."""
        vocabulary: dict[str, int] = {}
        corpus_ids: list[list[int]] = []
        for text in texts:
            corpus_ids.append(
                [
                    vocabulary.setdefault(token, len(vocabulary))
                    for token in self.analyzer.tokens(text)
                ]
            )
        model = bm25s.BM25(k1=self.k1, b=self.b)
        if texts:
            model.index(
                bm25s.tokenization.Tokenized(ids=corpus_ids, vocab=vocabulary), show_progress=False
            )
        self._model = model
        self._vocabulary = vocabulary
        self.size = len(texts)

    def scores(self, query: str) -> Scores:
        """BM25 score of every text for ``query`` (zeros when no term matches)."""
        if self._model is None or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        ids = [
            self._vocabulary[token]
            for token in self.analyzer.tokens(query)
            if token in self._vocabulary
        ]
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._model.get_scores(ids), dtype=np.float32)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best (number, score) pairs with a positive score, best first."""
        scores = self.scores(query)
        return top_k(scores, k)


def top_k(scores: Scores, k: int) -> list[tuple[int, float]]:
    """Indices and values of the ``k`` largest positive scores, best first."""
    if scores.size == 0 or k <= 0:
        return []
    k = min(k, scores.size)
    candidates = np.argpartition(-scores, k - 1)[:k]
    ordered = candidates[np.argsort(-scores[candidates], kind="stable")]
    return [(int(i), float(scores[i])) for i in ordered if scores[i] > 0]
