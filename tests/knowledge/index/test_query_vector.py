"""A query vector computed earlier must rank passages exactly as embedding the query does.

The assistant's classifier embeds each message; the knowledge base then searches with
that vector (``query_vector=``) instead of embedding the same text again. A vector of
another text, model or size is not used: the query is embedded as before.
"""

from __future__ import annotations

import numpy as np
import pytest

from allo.config import RetrievalMode
from allo.domain import Passage
from allo.knowledge.index.embedding import QueryVector
from allo.knowledge.service import KnowledgeBase
from allo.testing.embedders import FakeEmbedder

#: questions written for these tests (answered by the demo documents or not)
QUESTIONS = (
    "comment résilier mon abonnement ?",
    "combien coûte l'itinérance en Espagne",
    "où trouver le code PUK de ma carte SIM ?",
    "How do I change my Wi-Fi password?",
    "quelle est la recette du gâteau au chocolat",
)


def _ranked(passages: list[Passage]) -> list[tuple[str, float, dict[str, float]]]:
    return [(p.chunk.id, p.score, p.scores) for p in passages]


def _vector(demo_embedder: FakeEmbedder, text: str) -> QueryVector:
    return QueryVector(text, demo_embedder.name, demo_embedder.embed_queries([text])[0])


@pytest.mark.parametrize("mode", list(RetrievalMode))
@pytest.mark.parametrize("question", QUESTIONS)
def test_a_passed_vector_ranks_as_embedding_the_query(
    demo_kb: KnowledgeBase, demo_embedder: FakeEmbedder, question: str, mode: RetrievalMode
) -> None:
    known = _vector(demo_embedder, question)
    before = demo_embedder.calls
    passed = demo_kb.retriever.search(question, mode, k=10, query_vector=known)
    assert demo_embedder.calls == before  # nothing embedded
    recomputed = demo_kb.retriever.search(question, mode, k=10)
    assert demo_embedder.calls == before + 1
    assert _ranked(passed) == _ranked(recomputed)
    assert passed or mode is RetrievalMode.LEXICAL  # no word in common: no lexical hit


@pytest.mark.parametrize("question", QUESTIONS)
def test_ask_answers_the_same_with_the_vector(
    demo_kb: KnowledgeBase, demo_embedder: FakeEmbedder, question: str
) -> None:
    known = _vector(demo_embedder, question)
    before = demo_embedder.calls
    passed = demo_kb.ask(question, query_vector=known)
    assert demo_embedder.calls == before
    recomputed = demo_kb.ask(question)
    assert passed == recomputed


def test_ask_cleans_the_question_before_matching_the_vector(
    demo_kb: KnowledgeBase, demo_embedder: FakeEmbedder
) -> None:
    """The vector of the cleaned question is used; one of the raw text is not."""
    raw = "  comment   résilier mon abonnement ?\n"
    of_raw, of_cleaned = (
        _vector(demo_embedder, raw.strip()),
        _vector(demo_embedder, " ".join(raw.split())),
    )
    before = demo_embedder.calls
    demo_kb.ask(raw, query_vector=of_raw)
    assert demo_embedder.calls == before + 1  # "comment   résilier" is not the searched text
    demo_kb.ask(raw, query_vector=of_cleaned)
    assert demo_embedder.calls == before + 1


@pytest.mark.parametrize(
    "wrong",
    [
        QueryVector("comment payer ma facture ?", "fake-hashing-64", np.ones(64, np.float32)),
        QueryVector("comment résilier mon abonnement ?", "another-model", np.ones(64, np.float32)),
        QueryVector(
            "comment résilier mon abonnement ?", "fake-hashing-64", np.ones(32, np.float32)
        ),
    ],
    ids=["other text", "other model", "other size"],
)
def test_a_vector_that_does_not_match_is_not_used(
    demo_kb: KnowledgeBase, demo_embedder: FakeEmbedder, wrong: QueryVector
) -> None:
    question = "comment résilier mon abonnement ?"
    assert not wrong.matches(question, demo_embedder)
    before = demo_embedder.calls
    passages = demo_kb.retriever.search(question, k=10, query_vector=wrong)
    assert demo_embedder.calls == before + 1
    assert _ranked(passages) == _ranked(demo_kb.retriever.search(question, k=10))
