"""Feature rows of the intent classifier, built without sklearn's and scipy's per-call checks.

A chat message is one row. For one row, ``TfidfVectorizer.transform`` spends about 2 ms
validating its input and 0.2 ms computing it, and each ``scipy.sparse`` constructor or
``hstack`` about 0.1 to 0.3 ms checking formats: more than the rest of the classifier.
Here the same arithmetic runs on plain CSR arrays (``Rows``) and a single ``csr_matrix``
is built at the end. Every step repeats sklearn's and scipy's own, in the same order, so
the features are the same bit for bit (``tests/assistant/test_rows.py`` compares them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np


class Rows(NamedTuple):
    """Rows of a sparse matrix as CSR arrays (``shape`` as a scipy matrix has it)."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def of_dense(cls, matrix: np.ndarray) -> Rows:
        """The non-zero entries of a dense matrix, row by row (what ``csr_matrix`` keeps)."""
        keep = matrix != 0
        indptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
        np.cumsum(keep.sum(axis=1), out=indptr[1:])
        columns = np.nonzero(keep)[1].astype(np.int64)
        return cls(matrix[keep], columns, indptr, (matrix.shape[0], matrix.shape[1]))

    def matrix(self) -> Any:
        """A ``scipy.sparse.csr_matrix`` of these rows."""
        from scipy.sparse import csr_matrix

        return csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)


def side_by_side(parts: Sequence[Rows]) -> Rows:
    """Blocks with the same rows joined column-wise, data in float64 (``hstack``)."""
    rows = parts[0].shape[0]
    lengths = [np.diff(part.indptr) for part in parts]
    indptr = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(np.sum(lengths, axis=0), out=indptr[1:])
    data = np.empty(int(indptr[-1]), dtype=np.float64)
    indices = np.empty(int(indptr[-1]), dtype=np.int64)
    filled = indptr[:-1].copy()  # where the next entries of each row go
    offset = 0
    for part, length in zip(parts, lengths, strict=True):
        if part.shape[0] != rows:
            raise ValueError(f"blocks of {part.shape[0]} and {rows} rows cannot be joined")
        row_of = np.repeat(np.arange(rows), length)
        target = filled[row_of] + (np.arange(len(part.data)) - part.indptr[:-1][row_of])
        data[target] = part.data
        indices[target] = part.indices + offset
        filled += length
        offset += part.shape[1]
    return Rows(data, indices, indptr, (rows, offset))


class TfidfRows:
    """A fitted ``TfidfVectorizer``'s ``transform`` as ``Rows``.

    From the fitted analyzer, vocabulary and idf, as ``transform`` does it: counts in
    column order as floats, ``log + 1`` when sublinear, times idf, then each row divided
    by its L2 norm with sklearn's own routine.
    """

    def __init__(self, vectorizer: Any) -> None:
        """``vectorizer``: a fitted ``TfidfVectorizer`` (l2 norm, idf, counts)."""
        if vectorizer.norm != "l2" or vectorizer.binary or not vectorizer.use_idf:
            raise ValueError("TfidfRows needs a vectorizer with l2 norm, idf and counts")
        self.vectorizer = vectorizer
        self._analyze = vectorizer.build_analyzer()
        self._vocabulary: dict[str, int] = vectorizer.vocabulary_
        self._idf: np.ndarray = vectorizer.idf_
        self._sublinear = bool(vectorizer.sublinear_tf)
        self._dtype = np.dtype(vectorizer.dtype)

    def rows(self, texts: Sequence[str]) -> Rows:
        """One row per text."""
        from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

        vocabulary = self._vocabulary
        indices: list[int] = []
        counts: list[int] = []
        indptr = [0]
        for text in texts:
            counter: dict[int, int] = {}
            for feature in self._analyze(text):
                column = vocabulary.get(feature)
                if column is not None:
                    counter[column] = counter.get(column, 0) + 1
            for column in sorted(counter):
                indices.append(column)
                counts.append(counter[column])
            indptr.append(len(indices))
        columns = np.asarray(indices, dtype=np.int32)
        data = np.asarray(counts, dtype=self._dtype)
        if self._sublinear:
            np.log(data, data)
            data += 1.0
        data *= self._idf[columns]
        rows = Rows(
            data, columns, np.asarray(indptr, dtype=np.int32), (len(texts), len(vocabulary))
        )
        inplace_csr_row_normalize_l2(rows)  # reads .data, .shape, .indices, .indptr
        return rows

    def transform(self, texts: Sequence[str]) -> Any:
        """``vectorizer.transform(texts)``: a ``csr_matrix``."""
        return self.rows(texts).matrix()
