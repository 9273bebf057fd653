"""Group commit: requests that arrive while the engine is busy share its next step."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from allo.domain.alarms import Alarm
from allo.errors import InvalidInputError
from allo.noc.engine import NocEngine
from allo.noc.group_commit import GroupCommitter
from allo.noc.schema import noc_alarms
from allo.noc.sources import parse_alarm_payload
from allo.noc.sources.base import InputReport
from allo.noc.store import SqlNocStore
from tests.noc.helpers import GatedStore, gated_engine

NOW = 1_700_000_000.0


def body(*ids: str) -> Any:
    return [{"id": i, "device": "r1", "alarm_type": "T", "raised_at": NOW - 10} for i in ids]


def parser(payload: Any) -> Any:
    def parse(report: InputReport, first_row: int) -> list[Alarm]:
        return parse_alarm_payload(payload, report, first_row)

    return parse


def stored(store: SqlNocStore) -> int:
    with store._engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(noc_alarms)).scalar_one())


@pytest.fixture
def noc(tmp_path: Path) -> tuple[NocEngine, GatedStore]:
    return gated_engine(tmp_path, "gc", NOW, every_write=False)


def test_requests_queued_behind_a_step_share_the_next_transaction(
    noc: tuple[NocEngine, GatedStore],
) -> None:
    engine, store = noc
    committer = GroupCommitter(engine, linger_seconds=0.0)

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(committer.submit(parser(body("a0"))))
        await asyncio.to_thread(store.entered.wait, 10)  # step 1 is writing, not committed
        assert not first.done()
        rest = [asyncio.ensure_future(committer.submit(parser(body(f"a{i}")))) for i in range(1, 6)]
        bad = asyncio.ensure_future(committer.submit(parser({"nope": 1})))
        again = asyncio.ensure_future(committer.submit(parser(body("a1"))))  # a retry
        await asyncio.sleep(0.01)
        assert not any(f.done() for f in rest)  # nobody answered before their commit
        store.gate.set()
        return await asyncio.gather(first, *rest, bad, again, return_exceptions=True)

    results = asyncio.run(scenario())
    first, rest, bad, again = results[0], results[1:6], results[6], results[7]
    assert store.writes == [1, 5]  # two transactions for eight requests
    assert committer.steps == 2 and committer.requests == 8
    assert first.accepted == 1 and [r.alarms[0]["id"] for r in rest] == [
        f"a{i}" for i in range(1, 6)
    ]
    assert all(r.accepted == 1 and r.touched == [r.alarms[0]["incident"]] for r in rest)
    assert isinstance(bad, InvalidInputError)  # its own error, the others went through
    assert again.accepted == 0 and again.already_stored == 1  # not counted twice
    assert stored(store) == 6


def test_a_lone_request_is_committed_at_once_and_answered_after(
    noc: tuple[NocEngine, GatedStore],
) -> None:
    engine, store = noc
    store.gate.set()
    committer = GroupCommitter(engine)

    async def one() -> Any:
        return await committer.submit(parser(body("x1", "x2")))

    result = asyncio.run(one())
    assert result.accepted == 2 and store.writes == [2] and stored(store) == 2
    assert asyncio.run(one()).already_stored == 2  # a second event loop: a new task


def test_rejects_nonsense_settings(noc: tuple[NocEngine, GatedStore]) -> None:
    with pytest.raises(ValueError, match="max_requests"):
        GroupCommitter(noc[0], max_requests=0)
