"""Search over chunks in the three modes: lexical, dense, hybrid (fused).

``SearchIndex`` holds one immutable snapshot of the chunks and both indexes;
``Retriever`` keeps a snapshot in step with the store (it reloads when the store's
revision changes, so a server sees what ``allo ingest`` added in another process).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from allo.config import RetrievalMode, RetrievalSettings
from allo.domain import Chunk, Document, Passage
from allo.errors import ConfigError
from allo.knowledge.index.dense import DenseIndex
from allo.knowledge.index.embedding import Embedder, Matrix, QueryVector
from allo.knowledge.index.fusion import reciprocal_rank_fusion, zscore_fusion
from allo.knowledge.index.lexical import LexicalIndex
from allo.knowledge.index.ranking import top_k
from allo.storage.base import KnowledgeStore


def index_text(chunk: Chunk, document: Document | None = None, title: str | None = None) -> str:
    """What the indexes see of a chunk: its document title and headings, then its text.

    Headings carry the topic ("Wi-Fi > Changer le mot de passe") that the chunk's own
    words often leave implicit.
    """
    heading = [title or (document.title if document else "")]
    heading += [part for part in chunk.heading_path if part not in heading]
    prefix = " > ".join(part for part in heading if part)
    return f"{prefix}\n{chunk.text}" if prefix else chunk.text


@dataclass(frozen=True, slots=True)
class Hit:
    """One ranked chunk number with its per-retriever scores."""

    position: int
    score: float
    scores: dict[str, float]


class SearchIndex:
    """An immutable snapshot: chunks, their documents, a BM25 index and a vector index."""

    def __init__(
        self,
        chunks: Sequence[Chunk],
        documents: dict[str, Document],
        vectors: Matrix | None,
        settings: RetrievalSettings,
    ) -> None:
        self.chunks = list(chunks)
        self.documents = documents
        self.settings = settings
        self.lexical = LexicalIndex()
        self.lexical.build(
            [index_text(chunk, documents.get(chunk.document_id)) for chunk in chunks]
        )
        self.dense: DenseIndex | None = None
        if vectors is not None:
            self.dense = DenseIndex(ann_threshold=settings.ann_threshold)
            self.dense.build(vectors)

    def __len__(self) -> int:
        return len(self.chunks)

    def search(
        self,
        query: str,
        query_vector: Matrix | None,
        mode: RetrievalMode,
        k: int,
        exclude: frozenset[int] = frozenset(),
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query`` in ``mode``, leaving out ``exclude``d numbers.

        Exclusion lets the evaluation hide a gold passage without rebuilding the index.
        The ranking keeps BM25's document frequencies, but the abstention features of
        each hit (coverage, dense z-score) are computed as if the excluded chunks had
        never been indexed: a question word found only in the hidden passage must count
        as unseen, or the evaluation could not measure how unseen words are weighed.
        """
        needs_dense = mode in (RetrievalMode.DENSE, RetrievalMode.HYBRID)
        if needs_dense and (self.dense is None or query_vector is None):
            raise ConfigError(
                f"{mode.value} search needs embeddings, but dense retrieval is off "
                "(ALLO_EMBEDDER=none) or the index has no vectors; use --mode lexical "
                "or re-ingest with an embedder"
            )
        terms = self.lexical.terms(query)  # analysed once for the scores and each hit
        lexical = self.lexical.term_scores(terms) if mode is not RetrievalMode.DENSE else None
        dense = None
        if self.dense is not None and query_vector is not None and not self.dense.uses_ann:
            dense = self.dense.scores(query_vector)

        if mode is RetrievalMode.LEXICAL:
            assert lexical is not None
            ranked = top_k(lexical, k, exclude, positive_only=True)
        elif mode is RetrievalMode.DENSE:
            ranked = (
                top_k(dense, k, exclude)
                if dense is not None
                else self._ann(query_vector, k, exclude)
            )
        elif dense is not None and self.settings.fusion == "zscore":
            assert lexical is not None
            weight = self.settings.lexical_weight
            fused = zscore_fusion(
                {"lexical": lexical, "dense": dense}, {"lexical": weight, "dense": 1.0 - weight}
            )
            ranked = top_k(fused, k, exclude)
        else:
            assert lexical is not None
            depth = max(k, self.settings.candidates)
            lexical_list = top_k(lexical, depth, exclude, positive_only=True)
            dense_list = (
                top_k(dense, depth, exclude)
                if dense is not None
                else self._ann(query_vector, depth, exclude)
            )
            ranked = reciprocal_rank_fusion(
                {"lexical": lexical_list, "dense": dense_list}, k=self.settings.rrf_k
            )[:k]
        if lexical is None:
            lexical = self.lexical.term_scores(terms)
        lexical_stats = _spread(lexical, exclude)
        dense_stats = _spread(dense, exclude) if dense is not None else None
        hits = []
        for position, score in ranked:
            scores = {
                "lexical": float(lexical[position]),
                "lexical_z": _z(float(lexical[position]), lexical_stats),
                "coverage": self.lexical.term_coverage(terms, position, exclude),
            }
            if dense is not None and dense_stats is not None:
                scores["dense"] = float(dense[position])
                scores["dense_z"] = _z(scores["dense"], dense_stats)
            elif query_vector is not None and self.dense is not None:
                scores["dense"] = self.dense.similarity(query_vector, position)
            hits.append(Hit(position, score, scores))
        return hits

    def _ann(
        self, vector: Matrix | None, k: int, exclude: frozenset[int]
    ) -> list[tuple[int, float]]:
        assert self.dense is not None and vector is not None
        found = self.dense.search(vector, k + len(exclude))
        return [pair for pair in found if pair[0] not in exclude][:k]


def _spread(
    scores: npt.NDArray[np.float32], exclude: frozenset[int] = frozenset()
) -> tuple[float, float]:
    """Mean and standard deviation of a score vector (for z-scores of single hits),
    without the ``exclude``d entries."""
    if exclude:
        keep = np.ones(scores.size, dtype=bool)
        keep[[number for number in exclude if 0 <= number < scores.size]] = False
        scores = scores[keep]
    if scores.size == 0:
        return 0.0, 0.0
    return float(scores.mean()), float(scores.std())


def _z(value: float, stats: tuple[float, float]) -> float:
    mean, spread = stats
    return 0.0 if spread == 0.0 else (value - mean) / spread


class Retriever:
    """Finds passages for a question, in the configured or requested mode."""

    def __init__(
        self,
        loader: SnapshotLoader,
        embedder: Embedder | None,
        settings: RetrievalSettings,
    ) -> None:
        self._loader = loader
        self.embedder = embedder
        self.settings = settings
        self._index: SearchIndex | None = None
        self._revision: int | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the model and build the indexes now rather than on the first question."""
        if self.embedder is not None:
            self.embedder.warm_up()
        self.index()

    def index(self) -> SearchIndex:
        """The current snapshot, rebuilt if the store changed since it was built."""
        revision = self._loader.revision()
        with self._lock:
            if self._index is None or revision != self._revision:
                self._index = self._loader.load(self.settings)
                self._revision = revision
            return self._index

    def default_mode(self) -> RetrievalMode:
        """The configured mode, or lexical when no embedder is configured."""
        if self.embedder is None:
            return RetrievalMode.LEXICAL
        return self.settings.mode

    def search(
        self,
        query: str,
        mode: RetrievalMode | None = None,
        k: int | None = None,
        *,
        query_vector: QueryVector | None = None,
    ) -> list[Passage]:
        """The best passages for ``query``, best first.

        ``query_vector``: the query's embedding computed earlier (by the intent
        classifier), used when it is this embedder's vector of exactly ``query``;
        otherwise the query is embedded here.
        """
        mode = mode or self.default_mode()
        k = k or self.settings.top_k
        index = self.index()
        vector = None
        if self.embedder is not None and index.dense is not None:
            # Even in lexical mode the cosine is kept: abstention is calibrated on it.
            vector = self.query_vector(query, query_vector)
        hits = index.search(query, vector, mode, k)
        return [
            Passage(
                chunk=index.chunks[hit.position],
                document=index.documents[index.chunks[hit.position].document_id],
                score=hit.score,
                scores=hit.scores,
            )
            for hit in hits
        ]

    def query_vector(self, query: str, known: QueryVector | None = None) -> Matrix:
        """The embedder's query vector of ``query``: ``known`` when it is that, else computed."""
        if self.embedder is None:
            raise ConfigError("no query vector without an embedder (ALLO_EMBEDDER=none)")
        if known is not None and known.matches(query, self.embedder):
            return known.vector
        vector: Matrix = self.embedder.embed_queries([query])[0]
        return vector


class SnapshotLoader:
    """Reads chunks, documents and vectors from a store into a ``SearchIndex``."""

    def __init__(self, store: KnowledgeStore, embedder: Embedder | None) -> None:
        self._store = store
        self._embedder = embedder

    def revision(self) -> int:
        """The store's write counter."""
        return self._store.revision()

    def load(self, settings: RetrievalSettings) -> SearchIndex:
        """Build a snapshot of everything stored."""
        chunks: list[Chunk] = []
        vectors: list[Matrix] = []
        missing_vector = False
        for item in self._store.iter_chunks():
            chunks.append(item.chunk)
            if item.vector is None:
                missing_vector = True
            else:
                vectors.append(item.vector)
        documents = self._store.documents_by_id({chunk.document_id for chunk in chunks})
        matrix = None
        if self._embedder is not None and chunks and not missing_vector:
            matrix = np.vstack(vectors).astype(np.float32)
            if matrix.shape[1] != self._embedder.dim:
                matrix = None
        elif self._embedder is not None and not chunks:
            matrix = np.zeros((0, self._embedder.dim), dtype=np.float32)
        return SearchIndex(chunks, documents, matrix, settings)
