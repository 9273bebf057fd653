"""One live engine per stream: a second process (another ``allo serve`` worker) is told
so clearly and changes nothing; when the owner goes, however it goes, the next takes over
and rebuilds the open incidents from the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from allo.config import Settings
from allo.domain.alarms import Alarm
from allo.errors import EngineBusyError
from allo.noc.engine import NocEngine
from allo.noc.owner import StreamLock
from allo.noc.store import SqlNocStore
from allo.testing.clock import ScriptedClock
from allo.web.app import create_app
from tests.noc.test_api import OPERATOR, OPERATOR_TOKEN

NOW = 1_700_000_000.0


def engine(tmp_path: Path) -> NocEngine:
    return NocEngine(
        SqlNocStore(f"sqlite:///{tmp_path / 'noc.db'}"),
        ScriptedClock(NOW),
        lock=StreamLock(tmp_path / "live.lock"),
    )


def test_a_second_engine_waits_its_turn_and_then_rebuilds_the_first_ones_work(
    tmp_path: Path,
) -> None:
    first, second = engine(tmp_path), engine(tmp_path)
    first.ingest([Alarm("a1", "r1", "T", NOW - 10, row=0)])
    with pytest.raises(EngineBusyError, match=r"another process \(pid \d+\).*--workers 1"):
        second.ingest([Alarm("b1", "r2", "T", NOW - 5, row=0)])
    assert first.store.counts("live")["alarms"] == 1  # the refused alarm was not stored
    first.close()
    second.ingest([Alarm("b1", "r2", "T", NOW - 5, row=0)])
    assert second.recovered == 1  # the first engine's open incident, rebuilt
    assert second.store.counts("live")["alarms"] == 2
    second.close()


HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0); os.write(fd, str(os.getpid()).encode())
print("held", flush=True)
time.sleep(60)
"""


def test_a_killed_owner_hands_the_stream_over(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "live.lock")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        waiting = engine(tmp_path)
        with pytest.raises(EngineBusyError, match=f"pid {holder.pid}"):
            waiting.warm_up()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 10
        while True:  # the kernel releases the lock with the process
            try:
                waiting.warm_up()
                break
            except EngineBusyError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert waiting.ready and waiting.lock is not None and waiting.lock.held
        waiting.close()
    finally:
        holder.kill()
        holder.wait(10)


def test_a_second_server_worker_answers_503_with_what_to_do(settings: Settings) -> None:
    settings = settings.model_copy(update={"noc_token": SecretStr(OPERATOR_TOKEN)})
    alarm = {"id": "w1", "device": "r1", "alarm_type": "T", "raised_at": NOW}
    with TestClient(create_app(settings), headers=OPERATOR) as first:
        assert first.post("/v1/alarms", json=alarm).status_code == 200
        with TestClient(create_app(settings), headers=OPERATOR) as second:
            busy = second.get("/v1/incidents")
            assert busy.status_code == 503
            assert busy.json()["error"]["type"] == "EngineBusyError"
            assert "allo serve --workers 1" in busy.json()["error"]["message"]
    with TestClient(create_app(settings), headers=OPERATOR) as after:  # both stopped
        assert after.get("/v1/incidents").json()["total"] == 1


def test_a_closed_engine_used_again_asks_for_the_stream_again(tmp_path: Path) -> None:
    first, second = engine(tmp_path), engine(tmp_path)
    first.ingest([Alarm("a1", "r1", "T", NOW - 10, row=0)])
    first.close()  # e.g. the app's shutdown, then a late request
    second.ingest([Alarm("b1", "r2", "T", NOW - 5, row=0)])
    with pytest.raises(EngineBusyError):
        first.ingest([Alarm("a2", "r1", "T", NOW - 1, row=1)])  # never two writers
    assert second.store.counts("live")["alarms"] == 2
    second.close()
    first.ingest([Alarm("a2", "r1", "T", NOW - 1, row=1)])  # its turn again
    assert first.store.counts("live")["alarms"] == 3
    first.close()


def test_the_lock_holds_even_when_its_pid_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    mine = StreamLock(tmp_path / "live.lock")
    with monkeypatch.context() as patched:
        patched.setattr(os, "write", disk_full)
        mine.acquire()
    assert mine.held
    with pytest.raises(EngineBusyError):
        StreamLock(tmp_path / "live.lock").acquire()
    mine.release()
    other = StreamLock(tmp_path / "live.lock")
    other.acquire()  # released for good: nothing leaked
    assert other.held
    other.release()


def test_a_folder_that_cannot_hold_the_lock_runs_the_engine_unguarded(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("a file", encoding="utf-8")
    lock = StreamLock(tmp_path / "not-a-folder" / "live.lock")
    lock.acquire()  # logged, not raised: a read-only data folder worked before the lock
    assert lock.unavailable and not lock.held
