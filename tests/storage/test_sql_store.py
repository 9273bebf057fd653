"""The store contract on SQLite (always) and PostgreSQL (when a server is configured)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from allo.errors import StorageError
from allo.storage import SqlStore, open_store
from allo.testing.storage_contract import StoreContract

POSTGRES_URL = os.environ.get("ALLO_TEST_POSTGRES_URL")


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqlStore]:
        store = open_store(f"sqlite:///{tmp_path / 'allo.db'}")
        yield store
        store.close()


@pytest.mark.postgres
@pytest.mark.skipif(
    POSTGRES_URL is None and os.environ.get("CI") != "true",
    reason="set ALLO_TEST_POSTGRES_URL to run the contract on PostgreSQL (CI always does)",
)
class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self) -> Iterator[SqlStore]:
        assert POSTGRES_URL, "CI must export ALLO_TEST_POSTGRES_URL (see .ci/run)"
        database = f"allo_test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{database}"
        store = open_store(url)
        yield store
        store.close()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))
        admin.dispose()


def test_unreachable_database_is_a_clear_retryable_error() -> None:
    store = SqlStore("postgresql+psycopg://allo:secret@127.0.0.1:1/none")
    with pytest.raises(StorageError, match="cannot open the store") as caught:
        store.migrate()
    assert caught.value.retryable
    assert "secret" not in str(caught.value)
