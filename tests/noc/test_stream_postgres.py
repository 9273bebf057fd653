"""The streaming-engine tests of test_stream.py, persisted on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from allo.testing.postgres import POSTGRES_MARKS, POSTGRES_URL, temporary_database
from tests.noc import test_stream
from tests.noc.test_stream import (  # noqa: F401 - collected again here
    test_events_are_versioned_and_replayable,
    test_history_is_what_was_stored_by_stream_and_window,
    test_maintenance_folds_alarms_of_the_window,
    test_repeated_id_only_brings_its_clear_time,
    test_restart_rebuilds_open_incidents_and_skips_known_ids,
    test_silence_marks_matching_incidents_while_active,
    test_streaming_one_by_one_gives_the_replay_incidents,
)

pytestmark = POSTGRES_MARKS


@pytest.fixture(autouse=True)
def on_postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    assert POSTGRES_URL, "CI must export ALLO_TEST_POSTGRES_URL (see .ci/run)"
    with temporary_database(POSTGRES_URL) as url:
        monkeypatch.setattr(test_stream, "DATABASE_URL", lambda _path: url)
        yield
