"""The store contract on SQLite (always) and PostgreSQL (when a server is configured)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from allo.errors import StorageError
from allo.storage import SqlStore, open_store
from allo.testing.postgres import POSTGRES_MARKS, POSTGRES_URL, temporary_database
from allo.testing.storage_contract import StoreContract


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqlStore]:
        store = open_store(f"sqlite:///{tmp_path / 'allo.db'}")
        yield store
        store.close()


class TestPostgresStore(StoreContract):
    pytestmark = POSTGRES_MARKS

    @pytest.fixture
    def store(self) -> Iterator[SqlStore]:
        assert POSTGRES_URL, "CI must export ALLO_TEST_POSTGRES_URL (see .ci/run)"
        with temporary_database(POSTGRES_URL) as url:
            store = open_store(url)
            yield store
            store.close()


def test_unreachable_database_is_a_clear_retryable_error() -> None:
    store = SqlStore("postgresql+psycopg://allo:secret@127.0.0.1:1/none")
    with pytest.raises(StorageError, match="cannot open the store") as caught:
        store.migrate()
    assert caught.value.retryable
    assert "secret" not in str(caught.value)
