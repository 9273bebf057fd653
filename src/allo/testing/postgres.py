"""A throw-away PostgreSQL database per test, for contract runs on a real server.

Set ``ALLO_TEST_POSTGRES_URL`` (CI does, see .ci/run); each use creates a database with a
random name and drops it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

POSTGRES_URL = os.environ.get("ALLO_TEST_POSTGRES_URL")
# In CI the PostgreSQL runs must happen: a missing server is a failure, not a skip.
POSTGRES_REQUIRED = os.environ.get("CI") == "true"


# Marks of a test module that runs on PostgreSQL: skipped without a server, except in CI.
POSTGRES_MARKS = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        POSTGRES_URL is None and not POSTGRES_REQUIRED,
        reason="set ALLO_TEST_POSTGRES_URL to run on PostgreSQL (CI always does)",
    ),
]


@contextmanager
def temporary_database(server_url: str) -> Iterator[str]:
    """Create an empty database on the server, yield its URL, then drop it."""
    name = f"allo_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
