"""The conversation tests of test_session.py and test_store_queries.py, on a real
PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from allo.testing.postgres import POSTGRES_MARKS, POSTGRES_URL, temporary_database
from tests.assistant.dialogue.test_session import (  # noqa: F401 - collected again here
    test_bad_text_is_refused,
    test_handoff_queue_take_and_reply,
    test_one_customer_never_sees_another,
    test_replayed_message_is_not_processed_twice,
    test_resume_after_restart,
    test_script_text_is_stored_as_is,
)
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
