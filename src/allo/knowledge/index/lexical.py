"""BM25 over chunks with bm25s, fed by Allo's French analyzer (stems, folded accents)."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

import bm25s
import numpy as np
import numpy.typing as npt

from allo.knowledge.index.analysis import FrenchAnalyzer
from allo.knowledge.index.ranking import top_k

Scores = npt.NDArray[np.float32]
FloatArray = npt.NDArray[np.float64]


def idf(document_frequency: FloatArray, size: int) -> FloatArray:
    """BM25's inverse document frequency of each term, as bm25s computes it by default
    (Lucene's variant, never negative)."""
    return np.log1p((size - document_frequency + 0.5) / (document_frequency + 0.5))


def term_idf(document_frequency: float, size: int) -> float:
    """``idf`` of one term."""
    return math.log1p((size - document_frequency + 0.5) / (document_frequency + 0.5))


class LexicalIndex:
    """An immutable BM25 index over texts numbered 0..n-1; rebuild it to change it.

    bm25s stores the scores of every (term, document) pair in a sparse matrix at index
    time, so a query is a sum of a few rows: thousands of queries a second at 50k chunks.
    """

    def __init__(
        self,
        analyzer: FrenchAnalyzer | None = None,
        *,
        k1: float = 1.2,
        b: float = 0.75,
        unseen_weight: float = 1.0,
    ) -> None:
        """``unseen_weight``: the weight of a term the collection never saw in ``coverage``,
        as a share of the rarest weight; 1.0 except to measure the alternatives
        (benchmarks/fit_abstention.py --unseen-weight)."""
        if not 0.0 <= unseen_weight <= 1.0:
            raise ValueError(f"unseen_weight must be between 0 and 1 (got {unseen_weight})")
        self.analyzer = analyzer or FrenchAnalyzer()
        self.k1 = k1
        self.b = b
        self.unseen_weight = unseen_weight
        self._model: bm25s.BM25 | None = None
        self._vocabulary: dict[str, int] = {}
        self._term_sets: list[frozenset[int]] = []
        self._document_frequency: npt.NDArray[np.float64] = np.zeros(0)
        self._idf: npt.NDArray[np.float64] = np.zeros(0)
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
        self._term_sets = [frozenset(ids) for ids in corpus_ids]
        document_frequency = np.zeros(len(vocabulary) + 1)
        for terms in self._term_sets:
            document_frequency[list(terms)] += 1
        self._document_frequency = document_frequency
        self._idf = idf(document_frequency, len(texts))
        model = bm25s.BM25(k1=self.k1, b=self.b)
        if texts:
            model.index(
                bm25s.tokenization.Tokenized(ids=corpus_ids, vocab=vocabulary), show_progress=False
            )
        self._model = model
        self._vocabulary = vocabulary
        self.size = len(texts)

    def terms(self, query: str) -> list[str]:
        """The index terms of ``query`` (analyse it once for ``term_scores`` and
        ``term_coverage`` of several texts)."""
        return self.analyzer.tokens(query)

    def scores(self, query: str) -> Scores:
        """BM25 score of every text for ``query`` (zeros when no term matches)."""
        return self.term_scores(self.terms(query))

    def term_scores(self, terms: Sequence[str]) -> Scores:
        """``scores`` of a query given by its ``terms``."""
        if self._model is None or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        ids = [self._vocabulary[token] for token in terms if token in self._vocabulary]
        if not ids:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._model.get_scores(ids), dtype=np.float32)

    def coverage(self, query: str, position: int) -> float:
        """Share of the query's information found in text ``position``, in [0, 1].

        Each distinct query term weighs its inverse document frequency; a term the
        collection has never seen weighs like one seen in a single text, its rarest
        possible weight (a question about "voiture" in a telecom knowledge base is mostly
        unanswered). Unlike BM25 scores, this does not grow with the size of the
        collection, so it serves to calibrate abstention.

        Why not less for unseen terms: on PIAF with the gold paragraph truly removed (see
        ``term_coverage``'s ``hidden``), any smaller weight separates answerable from
        unanswerable questions worse (docs/retrieval.md, "Unseen words").
        """
        return self.term_coverage(self.terms(query), position)

    def term_coverage(
        self, query_terms: Sequence[str], position: int, hidden: Collection[int] = ()
    ) -> float:
        """``coverage`` of a query given by its terms.

        ``hidden``: text numbers to treat as absent from the collection (an evaluation
        hides a gold passage this way): document frequencies leave them out, so a term
        found only in a hidden text counts as unseen, as it would if that text had never
        been indexed.
        """
        terms = set(query_terms)
        if not terms or position >= self.size:
            return 0.0
        gone = [self._term_sets[number] for number in set(hidden) if 0 <= number < self.size]
        size = self.size - len(gone)
        unseen = self.unseen_weight * term_idf(1.0, size)
        total = 0.0
        found = 0.0
        present = self._term_sets[position]
        for term in terms:
            index = self._vocabulary.get(term)
            if index is None:
                total += unseen
                continue
            if gone:
                frequency = self._document_frequency[index] - sum(index in g for g in gone)
                weight = term_idf(frequency, size) if frequency > 0 else unseen
            else:
                weight = float(self._idf[index])
            total += weight
            if index in present:
                found += weight
        return found / total if total else 0.0

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The ``k`` best (number, score) pairs with a positive score, best first."""
        scores = self.scores(query)
        return top_k(scores, k, positive_only=True)
