"""The abstention features (coverage, dense z-score) and how an evaluation hides a passage.

Hiding a chunk must give the features of an index built without it: otherwise a word
found only in the hidden passage would still count as seen, and the evaluation could not
measure how words the base never saw are weighed.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from allo.config import RetrievalMode, RetrievalSettings
from allo.domain import Chunk, Document
from allo.knowledge.index.lexical import LexicalIndex, term_idf
from allo.knowledge.index.retriever import SearchIndex

TEXTS = [
    "Changer le mot de passe du Wi-Fi de la box",
    "Suspendre la ligne après le vol du téléphone",
    "Bloquer la ligne et le code PUK",
    "Voyager en Grèce avec son forfait mobile",
    "Le forfait mobile et la facture du mois",
]


def built(texts: list[str]) -> LexicalIndex:
    index = LexicalIndex()
    index.build(texts)
    return index


def test_an_unseen_term_weighs_like_a_term_seen_once() -> None:
    index = built(TEXTS)
    # "grèce" occurs in one text, "zanzibar" in none: the same weight, so the same share
    seen_once = index.term_coverage(index.terms("forfait grèce"), 4)
    unseen = index.term_coverage(index.terms("forfait zanzibar"), 4)
    assert unseen == pytest.approx(seen_once)
    assert 0.0 < unseen < 1.0
    assert index.term_coverage(index.terms("forfait mobile"), 4) == 1.0


def test_a_hidden_text_counts_as_never_indexed() -> None:
    full = built(TEXTS)
    without = built(TEXTS[:3] + TEXTS[4:])  # TEXTS[3] removed: text 4 becomes 3
    terms = full.terms("forfait mobile en Grèce")
    hidden = full.term_coverage(terms, 4, hidden={3})
    assert hidden == pytest.approx(without.term_coverage(terms, 3))
    # hiding changes the figure: "grèce" became unseen, "forfait" rarer
    assert hidden != pytest.approx(full.term_coverage(terms, 4))


def test_unseen_weight_scales_only_unseen_terms() -> None:
    index = built(TEXTS)
    terms = index.terms("forfait zanzibar")
    assert index.term_coverage(terms, 4) < 1.0
    index.unseen_weight = 0.0
    assert index.term_coverage(terms, 4) == 1.0
    idf = term_idf(2.0, len(TEXTS))  # "forfait": two texts
    index.unseen_weight = 0.5
    expected = idf / (idf + 0.5 * term_idf(1.0, len(TEXTS)))
    assert index.term_coverage(terms, 4) == pytest.approx(expected)


def test_unseen_weight_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match="unseen_weight must be between 0 and 1"):
        LexicalIndex(unseen_weight=1.5)


def _snapshot(texts: list[str], vectors: np.ndarray) -> SearchIndex:
    document = Document("d", "d.md", "", "fr", "", datetime(2026, 1, 1, tzinfo=UTC))
    chunks = [Chunk(f"c{n}", "d", n, text) for n, text in enumerate(texts)]
    return SearchIndex(chunks, {"d": document}, vectors, RetrievalSettings())


def test_search_features_with_a_hidden_chunk_match_an_index_without_it() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((len(TEXTS), 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query = "forfait mobile en Grèce"
    query_vector = vectors[3] + 0.3 * vectors[4]
    query_vector /= np.linalg.norm(query_vector)
    keep = [0, 1, 2, 4]
    full = _snapshot(TEXTS, vectors)
    without = _snapshot([TEXTS[n] for n in keep], vectors[keep])

    hidden_hit = full.search(query, query_vector, RetrievalMode.HYBRID, 1, frozenset({3}))[0]
    plain_hit = without.search(query, query_vector, RetrievalMode.HYBRID, 1)[0]

    assert keep[plain_hit.position] == hidden_hit.position == 4
    for name in ("coverage", "dense_z"):
        assert hidden_hit.scores[name] == pytest.approx(plain_hit.scores[name], abs=1e-5)
    shown_hit = full.search(query, query_vector, RetrievalMode.HYBRID, 2)
    assert [hit.position for hit in shown_hit][:1] == [3]  # not hidden: the best one
