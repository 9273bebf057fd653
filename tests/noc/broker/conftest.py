"""A real ``redis-server`` per test (see :mod:`allo.testing.redis`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from allo.testing.redis import RedisServer, redis_server


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis") as server:
        yield server


@pytest.fixture
def client(redis: RedisServer) -> Iterator[Any]:
    from allo.noc.broker import connect

    connection = connect(redis.url)
    yield connection
    connection.close()
