"""Retrieval evaluation on a ``{"id","title","text"}`` corpus and ``{"question","paragraph_id"}``
questions (the PIAF layout), through the product's own parsing, chunking and indexes.

Documents are ranked by their best chunk, so a paragraph cut in two still counts once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from allo.config import RetrievalMode, RetrievalSettings
from allo.domain import Chunk, Document
from allo.errors import InvalidInputError
from allo.evaluation.metrics import rank_of, ranking_metrics
from allo.knowledge.answer import confidence_from_scores
from allo.knowledge.index.embedding import Embedder, Matrix, embed_passages_cached
from allo.knowledge.index.retriever import SearchIndex, index_text
from allo.knowledge.ingest.chunking import chunk_document
from allo.knowledge.ingest.loader import document_id_for
from allo.knowledge.ingest.parsers.jsonl import parse_jsonl
from allo.storage.base import KnowledgeStore

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Question:
    """An evaluation question and the id of its gold paragraph."""

    text: str
    gold: str


def load_questions(path: Path) -> list[Question]:
    """Read ``{"question","paragraph_id"}`` lines."""
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            questions.append(Question(str(record["question"]), str(record["paragraph_id"])))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InvalidInputError(
                f'{path} line {number}: expected {{"question", "paragraph_id"}} ({exc})'
            ) from exc
    return questions


class EvaluationIndex:
    """A corpus parsed, chunked and embedded like real ingestion, held in memory."""

    def __init__(
        self,
        corpus: Path,
        embedder: Embedder | None,
        settings: RetrievalSettings,
        cache: KnowledgeStore | None = None,
    ) -> None:
        parsed = parse_jsonl(corpus.read_bytes(), str(corpus))
        self.chunks: list[Chunk] = []
        self.chunk_doc: list[str] = []
        documents: dict[str, Document] = {}
        texts: list[str] = []
        for record in parsed:
            external = record.external_id or record.title
            doc_id = document_id_for(external)
            documents[doc_id] = Document(
                id=doc_id,
                source=external,
                title=record.title,
                lang=record.lang or "fr",
                content_hash="",
                updated_at=_EPOCH,
            )
            for chunk in chunk_document(record, doc_id):
                self.chunks.append(chunk)
                self.chunk_doc.append(external)
                texts.append(index_text(chunk, title=record.title))
        self.embedder = embedder
        self.embed_seconds = 0.0
        vectors = self._embed(texts, cache) if embedder is not None else None
        self.index = SearchIndex(self.chunks, documents, vectors, settings)
        self._positions: dict[str, list[int]] = {}
        for position, external in enumerate(self.chunk_doc):
            self._positions.setdefault(external, []).append(position)

    def _embed(self, texts: list[str], cache: KnowledgeStore | None) -> Matrix:
        assert self.embedder is not None
        self.embedder.warm_up()
        start = time.perf_counter()
        vectors = embed_passages_cached(self.embedder, texts, cache)
        self.embed_seconds = time.perf_counter() - start
        return vectors

    def query_vectors(self, questions: Sequence[Question]) -> Matrix | None:
        """Embeddings of all questions at once (batched: much faster than one by one)."""
        if self.embedder is None:
            return None
        return self.embedder.embed_queries([question.text for question in questions])

    def rank_documents(
        self,
        question: str,
        vector: Matrix | None,
        mode: RetrievalMode,
        k: int,
        hide: str | None = None,
    ) -> tuple[list[str], list[float]]:
        """Document ids best first (deduplicated) and the confidence of each."""
        exclude = frozenset(self._positions.get(hide, ())) if hide else frozenset()
        hits = self.index.search(question, vector, mode, k * 3, exclude)
        ranking: list[str] = []
        confidences: list[float] = []
        for hit in hits:
            external = self.chunk_doc[hit.position]
            if external not in ranking:
                ranking.append(external)
                confidences.append(confidence_from_scores(hit.scores))
            if len(ranking) == k:
                break
        return ranking, confidences


def evaluate_retrieval(
    index: EvaluationIndex,
    questions: Sequence[Question],
    modes: Sequence[RetrievalMode],
    k: int = 10,
    progress: Callable[[int], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Metrics per mode: recall@1/5/k, MRR@k, nDCG@k and n."""
    vectors = (
        index.query_vectors(questions)
        if any(m is not RetrievalMode.LEXICAL for m in modes)
        else None
    )
    results: dict[str, dict[str, float]] = {}
    for mode in modes:
        ranks = []
        for number, question in enumerate(questions):
            vector = None if vectors is None else vectors[number]
            ranking, _ = index.rank_documents(question.text, vector, mode, k)
            ranks.append(rank_of(ranking, question.gold))
            if progress:
                progress(1)
        results[mode.value] = ranking_metrics(ranks, k)
    return results


def abstention_curve(
    index: EvaluationIndex,
    questions: Sequence[Question],
    mode: RetrievalMode,
    thresholds: Sequence[float],
) -> dict[str, object]:
    """For each threshold: how often Allo wrongly answers (gold hidden) or wrongly abstains.

    *Wrong answer*: the gold paragraph was removed from the index, yet the best remaining
    passage clears the threshold. *Wrong abstention*: the gold paragraph is indexed and
    ranked first, yet the confidence falls below the threshold.
    """
    vectors = index.query_vectors(questions)
    present: list[float] = []
    hidden: list[float] = []
    for number, question in enumerate(questions):
        vector = None if vectors is None else vectors[number]
        ranking, confidences = index.rank_documents(question.text, vector, mode, 1)
        if ranking and ranking[0] == question.gold:
            present.append(confidences[0])
        _, hidden_conf = index.rank_documents(question.text, vector, mode, 1, hide=question.gold)
        hidden.append(hidden_conf[0] if hidden_conf else 0.0)
    rows = []
    for threshold in thresholds:
        rows.append(
            {
                "threshold": threshold,
                "wrong_answer_rate": round(
                    sum(c >= threshold for c in hidden) / max(len(hidden), 1), 4
                ),
                "wrong_abstention_rate": round(
                    sum(c < threshold for c in present) / max(len(present), 1), 4
                ),
            }
        )
    return {
        "mode": mode.value,
        "n_hidden": len(hidden),
        "n_answerable": len(present),
        "curve": rows,
    }
