"""The reference peer: TF-IDF (word 1-2 grams + character 2-5 grams) and a linear SVM.

This is the classic strong lexical baseline of intent classification. Out-of-scope
examples, when the training data has some, are one more class; there is no threshold
(an SVM gives no calibrated confidence), which is why such a baseline misses most
out-of-scope queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from allo.assistant.nlu.examples import Example


class TfidfSvmBaseline:
    """``fit(examples)`` then ``predict_labels(texts)``; scikit-learn does the work."""

    name = "tfidf-linearsvc"

    def __init__(self, c: float = 1.0) -> None:
        self.c = c
        self._pipeline: Any = None

    def fit(self, examples: Sequence[Example]) -> TfidfSvmBaseline:
        """Train on all examples (``oos`` is an ordinary class here)."""
        from sklearn.pipeline import make_pipeline, make_union
        from sklearn.svm import LinearSVC

        from allo.assistant.nlu.features import char_tfidf, word_tfidf

        self._pipeline = make_pipeline(
            make_union(word_tfidf(), char_tfidf()),
            LinearSVC(C=self.c, random_state=0),
        )
        self._pipeline.fit([e.text for e in examples], [e.intent for e in examples])
        return self

    def predict_labels(self, texts: Sequence[str]) -> list[str]:
        """The predicted intent of each text."""
        if self._pipeline is None:
            raise RuntimeError("call fit() before predict_labels()")
        return [str(label) for label in self._pipeline.predict(list(texts))]
