"""The classifier's feature rows must be sklearn's and scipy's, bit for bit.

``allo.assistant.nlu.rows`` repeats ``TfidfVectorizer.transform`` and ``hstack``
without their per-call checks; the classifier joins its blocks and scores them with it.
Each is compared here with the library call it replaces, on the demo intents.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import csr_matrix, hstack, random_array
from sklearn.pipeline import make_union

from allo.assistant.nlu import IntentClassifier, load_examples
from allo.assistant.nlu.features import char_tfidf, word_tfidf
from allo.assistant.nlu.rows import Rows, TfidfRows, side_by_side
from allo.assistant.session import INTENTS_FILE
from allo.testing.embedders import FakeEmbedder

#: messages written for these tests, with words the training data never uses
MESSAGES = [
    "combien coûte l'utilisation de mon forfait en Espagne ?",
    "MA LIVEBOX CLIGNOTE EN ROUGE!!!",
    "xyzzy qwfp",
    "",
    "   ",
    "été, garçon, cœur — 12,50 €",
]


@cache
def _training_texts() -> tuple[str, ...]:
    return tuple(example.text for example in load_examples(INTENTS_FILE))


@cache
def _vectorizers() -> tuple[Any, Any]:
    texts = list(_training_texts())
    return word_tfidf().fit(texts), char_tfidf().fit(texts)


@cache
def _classifier() -> IntentClassifier:
    return IntentClassifier(FakeEmbedder()).fit(load_examples(INTENTS_FILE))


def _same(ours: Any, theirs: Any) -> None:
    """Same shape, same stored entries in the same order, same values bit for bit."""
    theirs = csr_matrix(theirs)
    assert ours.shape == theirs.shape
    assert np.array_equal(ours.indptr, theirs.indptr)
    assert np.array_equal(ours.indices, theirs.indices)
    assert ours.data.dtype == theirs.data.dtype
    assert np.array_equal(ours.data, theirs.data)


@pytest.mark.parametrize("which", [0, 1], ids=["words", "characters"])
def test_tfidf_rows_are_transform(which: int) -> None:
    vectorizer = _vectorizers()[which]
    texts = [*MESSAGES, *_training_texts()[::7]]
    _same(TfidfRows(vectorizer).transform(texts), vectorizer.transform(texts))
    for text in MESSAGES:  # one message at a time, as the chat does
        _same(TfidfRows(vectorizer).transform([text]), vectorizer.transform([text]))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=80), min_size=1, max_size=4))
def test_tfidf_rows_of_any_text_are_transform(texts: list[str]) -> None:
    for vectorizer in _vectorizers():
        _same(TfidfRows(vectorizer).transform(texts), vectorizer.transform(texts))


def test_tfidf_rows_refuse_other_settings() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    binary = TfidfVectorizer(binary=True).fit(["un texte", "un autre"])
    with pytest.raises(ValueError, match="l2 norm"):
        TfidfRows(binary)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 5),
    st.lists(st.tuples(st.integers(1, 30), st.floats(0.0, 1.0)), min_size=1, max_size=4),
    st.integers(0, 2**32 - 1),
)
def test_side_by_side_is_hstack(rows: int, blocks: list[tuple[int, float]], seed: int) -> None:
    rng = np.random.default_rng(seed)
    parts = [
        csr_matrix(random_array((rows, width), density=density, rng=rng, dtype=np.float32))
        for width, density in blocks
    ]
    joined = side_by_side([Rows(p.data, p.indices, p.indptr, p.shape) for p in parts])
    _same(joined.matrix(), hstack(parts, format="csr").astype(np.float64))


def test_dense_rows_keep_what_csr_matrix_keeps() -> None:
    dense = np.array([[0.0, 1.5, 0.0], [0.0, 0.0, 0.0], [-2.0, 0.0, 3.0]], dtype=np.float32)
    _same(Rows.of_dense(dense).matrix(), csr_matrix(dense))


def test_the_features_are_those_of_a_feature_union() -> None:
    """What the classifier computed with ``make_union(...).transform`` and two ``hstack``."""
    from allo.assistant.nlu.classifier import _ngrams

    classifier = _classifier()
    fitted = classifier._fitted
    assert fitted is not None and fitted.lexical is not None and fitted.centring is not None
    vectors = classifier.query_vectors(MESSAGES)
    assert vectors is not None
    centred = fitted.centring.transform(vectors)
    union = make_union(word_tfidf(), char_tfidf())
    union.transformer_list = [
        (name, rows.vectorizer)
        for (name, _), rows in zip(union.transformer_list, fitted.lexical, strict=True)
    ]
    lexical = union.transform(MESSAGES) / np.sqrt(2.0)
    before = hstack([csr_matrix(centred), lexical * classifier.lexical_weight]).tocsr()
    features = classifier._features(_ngrams(fitted, MESSAGES), centred)
    _same(features, before)
    assert np.array_equal(
        fitted.svm.decision_function(features),
        fitted.svm.decision_function(before),
    )


def test_scores_are_the_decision_function() -> None:
    from allo.assistant.nlu.classifier import _decision, _ngrams

    classifier = _classifier()
    fitted = classifier._fitted
    assert fitted is not None and fitted.centring is not None
    vectors = classifier.query_vectors(MESSAGES)
    assert vectors is not None
    centred = fitted.centring.transform(vectors)
    features = classifier._features(_ngrams(fitted, MESSAGES), centred)
    assert np.array_equal(_decision(fitted.svm, features), fitted.svm.decision_function(features))
