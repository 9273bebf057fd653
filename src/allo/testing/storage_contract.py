"""The contract every ``KnowledgeStore`` must honour, as a pytest mixin.

Subclass ``StoreContract`` and provide a ``store`` fixture returning a fresh, migrated,
empty store; every backend (SQLite, PostgreSQL, yours) runs the same assertions.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from allo.domain import Chunk, Document
from allo.errors import NotFoundError
from allo.storage.base import KnowledgeStore


def make_document(
    doc_id: str = "doc-1", source: str = "kb/livebox.md", **extra: object
) -> Document:
    """A small valid document record for tests."""
    values: dict[str, object] = {
        "id": doc_id,
        "source": source,
        "title": "Installer la Livebox 6",
        "lang": "fr",
        "content_hash": "h" * 64,
        "updated_at": datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
        "tags": ("box", "installation"),
        "url": None,
    }
    values.update(extra)
    return Document(**values)  # type: ignore[arg-type]


def make_chunks(doc_id: str, count: int) -> list[Chunk]:
    """``count`` chunks of ``doc_id`` with heading paths."""
    return [
        Chunk(
            id=f"{doc_id}:{index}",
            document_id=doc_id,
            ordinal=index,
            text=f"Étape {index} : branchez le câble fibre ({doc_id}).",
            heading_path=("Installer la Livebox 6", f"Partie {index}"),
            kind="steps" if index % 2 else "text",
        )
        for index in range(count)
    ]


class StoreContract:
    """Assertions shared by every store implementation."""

    def test_empty_store(self, store: KnowledgeStore) -> None:
        assert store.count_documents() == 0
        assert store.list_documents() == []
        assert list(store.iter_chunks()) == []

    def test_put_then_read_back(self, store: KnowledgeStore) -> None:
        document = make_document()
        chunk_list = make_chunks(document.id, 3)
        vectors = np.arange(3 * 4, dtype=np.float32).reshape(3, 4)
        store.put_document(document, chunk_list, vectors)

        loaded = store.get_document(document.id)
        assert loaded.title == document.title
        assert loaded.tags == ("box", "installation")
        assert loaded.updated_at == document.updated_at
        assert loaded.chunk_count == 3
        assert store.chunks_of(document.id) == chunk_list
        stored = list(store.iter_chunks())
        assert [item.chunk for item in stored] == chunk_list
        for index, item in enumerate(stored):
            assert item.vector is not None
            np.testing.assert_array_equal(item.vector, vectors[index])

    def test_documents_by_id(self, store: KnowledgeStore) -> None:
        store.put_document(make_document("a", "sa"), make_chunks("a", 1), None)
        store.put_document(make_document("b", "sb"), make_chunks("b", 1), None)
        found = store.documents_by_id(["a", "b", "missing"])
        assert sorted(found) == ["a", "b"]
        assert found["b"].source == "sb"
        assert store.documents_by_id([]) == {}

    def test_unicode_survives(self, store: KnowledgeStore) -> None:
        document = make_document(title="Facture « détaillée » — été 2026 ✓")
        store.put_document(document, make_chunks(document.id, 1), None)
        assert store.get_document(document.id).title == "Facture « détaillée » — été 2026 ✓"

    def test_replace_drops_old_chunks(self, store: KnowledgeStore) -> None:
        document = make_document()
        store.put_document(document, make_chunks(document.id, 5), None)
        store.put_document(document, make_chunks(document.id, 2), None)
        assert len(store.chunks_of(document.id)) == 2
        assert len(list(store.iter_chunks())) == 2
        assert store.count_documents() == 1

    def test_same_source_new_id_replaces(self, store: KnowledgeStore) -> None:
        store.put_document(make_document("a"), make_chunks("a", 2), None)
        store.put_document(make_document("b"), make_chunks("b", 1), None)
        assert [doc.id for doc in store.list_documents()] == ["b"]
        assert [item.chunk.document_id for item in store.iter_chunks()] == ["b"]

    def test_find_by_source(self, store: KnowledgeStore) -> None:
        store.put_document(make_document(), make_chunks("doc-1", 1), None)
        found = store.find_by_source("kb/livebox.md")
        assert found is not None and found.id == "doc-1"
        assert store.find_by_source("kb/other.md") is None
        assert store.sources() == ["kb/livebox.md"]

    def test_delete(self, store: KnowledgeStore) -> None:
        store.put_document(make_document(), make_chunks("doc-1", 2), None)
        store.delete_document("doc-1")
        assert store.count_documents() == 0
        assert list(store.iter_chunks()) == []
        with pytest.raises(NotFoundError):
            store.get_document("doc-1")

    def test_unknown_ids_raise_not_found(self, store: KnowledgeStore) -> None:
        with pytest.raises(NotFoundError, match="unknown-id"):
            store.get_document("unknown-id")
        with pytest.raises(NotFoundError, match="unknown-id"):
            store.delete_document("unknown-id")

    def test_revision_grows_on_every_write(self, store: KnowledgeStore) -> None:
        start = store.revision()
        store.put_document(make_document(), make_chunks("doc-1", 1), None)
        after_put = store.revision()
        store.delete_document("doc-1")
        assert start < after_put < store.revision()

    def test_pagination_is_ordered_by_title(self, store: KnowledgeStore) -> None:
        for index, title in enumerate(["Wi-Fi", "Box", "Facture", "Appli"]):
            store.put_document(
                make_document(f"d{index}", f"s{index}", title=title),
                make_chunks(f"d{index}", 1),
                None,
            )
        titles = [doc.title for doc in store.list_documents(limit=2)]
        titles += [doc.title for doc in store.list_documents(offset=2, limit=2)]
        assert titles == ["Appli", "Box", "Facture", "Wi-Fi"]
        assert store.count_documents() == 4

    def test_embedding_cache(self, store: KnowledgeStore) -> None:
        vector = np.array([0.5, -1.0, 2.0], dtype=np.float32)
        store.cache_vectors("e5", {"k1": vector})
        store.cache_vectors("e5", {"k1": vector})  # idempotent
        found = store.cached_vectors("e5", ["k1", "k2"])
        assert list(found) == ["k1"]
        np.testing.assert_array_equal(found["k1"], vector)
        assert store.cached_vectors("other-model", ["k1"]) == {}

    def test_failed_write_changes_nothing(self, store: KnowledgeStore) -> None:
        store.put_document(make_document(), make_chunks("doc-1", 2), None)
        broken = make_chunks("doc-1", 3)
        broken[2] = broken[0]  # duplicate primary key: the transaction must roll back
        with pytest.raises(Exception):  # noqa: B017 - the backend's own error type
            store.put_document(make_document(title="Nouveau titre"), broken, None)
        assert store.get_document("doc-1").title == "Installer la Livebox 6"
        assert len(store.chunks_of("doc-1")) == 2

    def test_migrate_is_idempotent(self, store: KnowledgeStore) -> None:
        store.put_document(make_document(), make_chunks("doc-1", 1), None)
        store.migrate()
        assert store.count_documents() == 1
