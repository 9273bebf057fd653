"""Maintenance windows' incidents: open while the window lasts, closed after, never reopened."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from allo.noc.engine import NocEngine
from allo.noc.store import IncidentQuery, SqlNocStore
from allo.testing.clock import ScriptedClock
from allo.web.routers.noc import sweep_maintenance
from tests.noc.helpers import alarm


def engine(path: Path, clock: ScriptedClock) -> NocEngine:
    noc = NocEngine(SqlNocStore(f"sqlite:///{path / 'noc.db'}"), clock, stream="t")
    noc.warm_up()
    return noc


def state(noc: NocEngine, incident_id: str) -> tuple[str, int]:
    detail = noc.incident(incident_id)
    return detail["state"], detail["size"]


def test_the_incident_closes_with_the_first_step_after_the_window(tmp_path: Path) -> None:
    clock = ScriptedClock(1000.0)
    noc = engine(tmp_path, clock)
    window = noc.add_window(["2"], 900.0, 1500.0, "ops", "swap")
    incident = f"t-mw-{window.id}"
    noc.ingest([alarm(0, "0", "2", 1000.0)])
    clock.advance(100)
    noc.ingest([alarm(1, "0", "2", 1100.0)])
    assert state(noc, incident) == ("open", 2)
    events: list[dict[str, Any]] = []
    noc.subscribe(lambda _version, event: events.append(event))
    clock.advance(500)  # 1600: the window is over
    result = noc.ingest([alarm(2, "1", "5", 1600.0)])  # elsewhere, outside any window
    assert state(noc, incident) == ("closed", 2)
    assert incident in result.touched
    assert any(e.get("incident", {}).get("id") == incident for e in events)
    _, live = noc.incidents(IncidentQuery(state="open", kind="maintenance"), 0, 10)
    assert live == []


def test_a_quiet_network_closes_it_by_the_sweep_and_late_alarms_keep_it_closed(
    tmp_path: Path,
) -> None:
    clock = ScriptedClock(1000.0)
    noc = engine(tmp_path, clock)
    window = noc.add_window(["2", "3"], 900.0, 1500.0)
    incident = f"t-mw-{window.id}"
    noc.ingest([alarm(0, "0", "2", 1000.0)])
    assert noc.close_ended_windows() == []  # still running
    clock.advance(501)
    assert noc.close_ended_windows() == [incident]
    assert noc.close_ended_windows() == []  # once
    late = noc.ingest([alarm(1, "0", "3", 1400.0)])  # raised inside, arrives after the end
    assert late.maintenance == 1
    assert state(noc, incident) == ("closed", 2)
    members = {m["id"]: m["reason"] for m in noc.incident(incident)["members"]}
    assert members == {"row-0": "head", "row-1": "maintenance"}


def test_deleting_the_window_closes_its_incident_and_keeps_its_alarms(tmp_path: Path) -> None:
    clock = ScriptedClock(1000.0)
    noc = engine(tmp_path, clock)
    window = noc.add_window(["2"], 900.0, 5000.0)
    noc.ingest([alarm(0, "0", "2", 1000.0), alarm(1, "1", "2", 1001.0)])
    noc.delete_window(window.id)
    assert state(noc, f"t-mw-{window.id}") == ("closed", 2)
    noc.ingest([alarm(2, "0", "2", 1002.0)])  # no window now: the pipeline takes it
    assert noc.store.counts("t")["incident_alarms"] == 3


def test_a_restart_carries_on_counting_and_closes_what_ended_meanwhile(tmp_path: Path) -> None:
    clock = ScriptedClock(1000.0)
    first = engine(tmp_path, clock)
    running = first.add_window(["2"], 900.0, 3000.0)
    ending = first.add_window(["3"], 900.0, 1500.0)
    first.ingest([alarm(0, "0", "2", 1000.0), alarm(1, "0", "3", 1000.0)])
    first.close()
    clock.advance(1000)  # 2000: ``ending`` ended while nothing ran
    second = engine(tmp_path, clock)
    assert state(second, f"t-mw-{ending.id}") == ("closed", 1)
    second.ingest([alarm(2, "1", "2", 2000.0)])
    assert state(second, f"t-mw-{running.id}") == ("open", 2)  # counted on, not restarted
    assert second.incident(f"t-mw-{running.id}")["head"]["id"] == "row-0"


def test_alarms_of_a_window_already_over_fold_into_a_closed_incident(tmp_path: Path) -> None:
    clock = ScriptedClock(10_000.0)  # replaying last week's alarms, say
    noc = engine(tmp_path, clock)
    window = noc.add_window(["2"], 900.0, 1500.0)
    noc.ingest([alarm(0, "0", "2", 1000.0), alarm(1, "0", "2", 1200.0)])
    assert state(noc, f"t-mw-{window.id}") == ("closed", 2)


def test_the_server_sweep_closes_ended_windows_and_survives_failures(tmp_path: Path) -> None:
    clock = ScriptedClock(1000.0)
    noc = engine(tmp_path, clock)
    window = noc.add_window(["2"], 900.0, 1500.0)
    noc.ingest([alarm(0, "0", "2", 1000.0)])
    clock.advance(600)
    calls = 0
    close = noc.close_ended_windows

    def flaky() -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database is locked")
        return close()

    noc.close_ended_windows = flaky  # type: ignore[method-assign]

    async def run() -> None:
        task = asyncio.create_task(sweep_maintenance(noc, every=0.01))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if calls >= 2:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert calls >= 2
    assert state(noc, f"t-mw-{window.id}")[0] == "closed"
