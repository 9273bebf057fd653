"""Small builders shared by the NOC tests."""

from __future__ import annotations

import threading
from pathlib import Path

from allo.domain.alarms import Alarm
from allo.noc.engine import NocEngine
from allo.noc.store import SqlNocStore, WriteBatch
from allo.testing.clock import ScriptedClock


def alarm(
    row: int,
    kind: str,
    device: str,
    raised: float,
    cleared: float | None = None,
    alarm_id: str | None = None,
) -> Alarm:
    return Alarm(
        alarm_id or f"row-{row}",
        device,
        kind,
        raised,
        raised if cleared is None else cleared,
        row=row,
    )


class GatedStore(SqlNocStore):
    """A real store whose writes wait for a signal (only the first one with
    ``every_write=False``), or fail, and that records how many alarms each transaction
    held."""

    def __init__(self, url: str, *, every_write: bool = True, fail: bool = False) -> None:
        super().__init__(url)
        self.every_write = every_write
        self.fail = fail
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.writes: list[int] = []  # alarms per transaction

    def write(self, stream: str, batch: WriteBatch) -> None:
        if self.every_write or not self.writes:
            self.entered.set()
            assert self.gate.wait(10), "the test never opened the gate"
        if self.fail:
            raise OSError("disk full")
        super().write(stream, batch)
        self.writes.append(len(batch.alarms))


def gated_engine(
    folder: Path, stream: str, now: float, *, every_write: bool = True
) -> tuple[NocEngine, GatedStore]:
    """A warm engine on a :class:`GatedStore` in ``folder``."""
    store = GatedStore(f"sqlite:///{folder / 'noc.db'}", every_write=every_write)
    engine = NocEngine(store, ScriptedClock(now), stream=stream)
    engine.warm_up()
    return engine, store
