"""The conversation store's hot-path reads of test_store_queries.py, on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from allo.testing.postgres import POSTGRES_MARKS, POSTGRES_URL, temporary_database
from tests.assistant.dialogue.test_store_queries import (  # noqa: F401 - collected again here
    test_concurrent_writers_on_one_file,
    test_create_returns_what_get_reads,
    test_get_with_message,
    test_stale_version_is_a_conflict_and_writes_nothing,
)

pytestmark = POSTGRES_MARKS


@pytest.fixture
def db_url() -> Iterator[str]:
    assert POSTGRES_URL, "CI must export ALLO_TEST_POSTGRES_URL (see .ci/run)"
    with temporary_database(POSTGRES_URL) as url:
        yield url
