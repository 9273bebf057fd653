"""Fixtures of the gateway tests: a database URL for each store backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from allo.testing.postgres import POSTGRES_MARKS, POSTGRES_URL, temporary_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=POSTGRES_MARKS)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database on SQLite, and on PostgreSQL where one is configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'allo.db'}"
        return
    assert POSTGRES_URL, "CI must export ALLO_TEST_POSTGRES_URL (see .ci/run)"
    with temporary_database(POSTGRES_URL) as url:
        yield url
