"""The store protocol: what the knowledge engine needs from persistence, nothing more.

Every implementation must pass ``allo.testing.storage_contract.StoreContract``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from allo.domain import Chunk, Document

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk as loaded for indexing, with its embedding when one was computed."""

    chunk: Chunk
    vector: Vector | None


@runtime_checkable
class KnowledgeStore(Protocol):
    """Documents, their chunks and embeddings, and an embedding cache keyed by content.

    Writing a document replaces it and its chunks in one transaction, so a crash leaves
    either the old version or the new one, never a mix. ``revision()`` changes on
    every write, so in-memory indexes know when to reload.
    """

    def migrate(self) -> None:
        """Create or upgrade the schema to the latest version."""

    def close(self) -> None:
        """Release connections."""

    def revision(self) -> int:
        """A number that grows with every write to documents or chunks."""

    def put_document(
        self, document: Document, chunks: Sequence[Chunk], vectors: Vector | None
    ) -> None:
        """Insert or replace a document with all its chunks (and their vectors) atomically."""

    def get_document(self, document_id: str) -> Document:
        """Return a document; raise ``NotFoundError`` for an unknown id."""

    def documents_by_id(self, ids: Iterable[str]) -> dict[str, Document]:
        """Several documents at once; unknown ids are left out."""

    def find_by_source(self, source: str) -> Document | None:
        """Return the document loaded from ``source``, if any."""

    def list_documents(self, *, offset: int = 0, limit: int = 100) -> list[Document]:
        """Documents ordered by title, then id."""

    def count_documents(self) -> int:
        """How many documents are stored."""

    def sources(self) -> list[str]:
        """Every stored document's source."""

    def delete_document(self, document_id: str) -> None:
        """Delete a document and its chunks; raise ``NotFoundError`` for an unknown id."""

    def chunks_of(self, document_id: str) -> list[Chunk]:
        """A document's chunks in reading order."""

    def iter_chunks(self) -> Iterator[StoredChunk]:
        """Every chunk with its vector, in a stable order (for building indexes)."""

    def cached_vectors(self, model: str, keys: Iterable[str]) -> dict[str, Vector]:
        """Embeddings already computed by ``model`` for these content keys."""

    def cache_vectors(self, model: str, vectors: Mapping[str, Vector]) -> None:
        """Remember embeddings by content key, so unchanged text is never embedded twice."""
