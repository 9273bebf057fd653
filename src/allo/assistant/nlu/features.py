"""Lexical feature extractors shared by the baseline and the classifier."""

from __future__ import annotations

from typing import Any


def word_tfidf() -> Any:
    """Word unigrams and bigrams, sublinear tf, accents kept."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True, min_df=1)


def char_tfidf() -> Any:
    """Character 2-5 grams inside word boundaries, sublinear tf."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True, min_df=1
    )
