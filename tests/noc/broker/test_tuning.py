"""What keeps a consumer's latency tail short: checkpoints off the commit path, GC pauses
measured (and the consumer's CLI options for both)."""

from __future__ import annotations

import gc
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from allo.noc.broker import PartitionConsumer, connect, engine_stream
from allo.noc.broker.tuning import BackgroundCheckpointer, GcPauses, sqlite_file
from allo.noc.engine import NocEngine
from allo.noc.store import SqlNocStore
from allo.testing.clock import ScriptedClock
from allo.testing.redis import REDIS_MARKS, RedisServer
from tests.noc.broker.helpers import GRAPH, TOPOLOGY, alarms
from tests.noc.broker.test_cli import app


def wal_database(path: Path) -> sqlite3.Connection:
    """A WAL database whose writer never checkpoints by itself, as the consumer's store."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA wal_autocheckpoint=0")
    connection.execute("CREATE TABLE t (v TEXT)")
    return connection


def write(connection: sqlite3.Connection, batches: int, pause: float = 0.0) -> None:
    for _ in range(batches):
        connection.execute("BEGIN")
        connection.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 100)
        connection.execute("COMMIT")
        time.sleep(pause)


def wal_size(path: Path) -> int:
    return Path(f"{path}-wal").stat().st_size


def wait_for_pass(checkpointer: BackgroundCheckpointer, seen: int) -> int:
    deadline = time.monotonic() + 10
    while checkpointer.checkpoints <= seen and time.monotonic() < deadline:
        time.sleep(0.002)
    return checkpointer.checkpoints


def test_the_background_checkpointer_keeps_the_wal_small(tmp_path: Path) -> None:
    alone, helped = tmp_path / "alone.db", tmp_path / "helped.db"
    without = wal_database(alone)
    write(without, 40)
    with_passes = wal_database(helped)
    checkpointer = BackgroundCheckpointer(str(helped))
    other = sqlite3.connect(helped, isolation_level=None)
    # the thread's passes, each between two batches of the writer (the thread's own timing
    # would race the writer on a loaded machine; see the busy writer below for the other
    # order)
    for _ in range(40):
        write(with_passes, 1)
        checkpointer.run_pass(other)
    assert checkpointer.failures == 0 and checkpointer.inline == 0
    # without it the WAL holds every page written (about 2.5 MB); with it the WAL restarts
    # after each pass, so its file never grows past a couple of batches
    assert wal_size(alone) > 2_000_000
    assert wal_size(helped) < wal_size(alone) / 5
    assert with_passes.execute("SELECT count(*) FROM t").fetchone() == (4000,)
    other.close()
    without.close()
    with_passes.close()


def test_the_thread_checkpoints_while_the_writer_writes(tmp_path: Path) -> None:
    path = tmp_path / "noc.db"
    writer = wal_database(path)
    checkpointer = BackgroundCheckpointer(str(path), interval=0.005)
    checkpointer.start()
    try:
        seen = wait_for_pass(checkpointer, 0)
        write(writer, 10)
        assert wait_for_pass(checkpointer, seen) > seen
    finally:
        checkpointer.stop()
    assert checkpointer.failures == 0 and checkpointer.max_wal_seen > 0
    assert writer.execute("SELECT count(*) FROM t").fetchone() == (1000,)
    writer.close()


def test_the_writer_is_told_to_checkpoint_when_the_thread_falls_behind(tmp_path: Path) -> None:
    path = tmp_path / "noc.db"
    connection = wal_database(path)
    checkpointer = BackgroundCheckpointer(str(path), interval=0.01, max_wal_bytes=1)
    assert not checkpointer.needs_inline()
    checkpointer.start()
    try:
        write(connection, 3)
        deadline = time.monotonic() + 5
        while not checkpointer.needs_inline() and time.monotonic() < deadline:
            write(connection, 1, pause=0.02)  # more than 1 byte of WAL at every pass
        assert checkpointer.needs_inline()
    finally:
        checkpointer.stop()
    checkpointer.done_inline()
    assert checkpointer.inline == 1 and not checkpointer.needs_inline()
    # a thread that never ran is stale after `stale_after` seconds
    idle = BackgroundCheckpointer(str(path))
    idle.stale_after = 0.0
    assert idle.needs_inline()
    connection.close()


def test_gc_pauses_are_counted_by_generation() -> None:
    pauses = GcPauses()
    try:
        gc.collect(2)
        gc.collect(1)
    finally:
        pauses.close()
    gc.collect(2)  # after close: not counted
    figures = pauses.to_json()
    assert figures["gen2"]["count"] == 1  # type: ignore[index]
    assert figures["gen1"]["count"] >= 1  # type: ignore[index]
    assert pauses.max_ms[2] > 0.0


def test_sqlite_file_names_only_a_sqlite_file() -> None:
    assert sqlite_file("sqlite:////var/lib/allo/noc.db") == "/var/lib/allo/noc.db"
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql://u@h/db") is None


def test_deferred_checkpoints_reach_every_connection_of_the_store(tmp_path: Path) -> None:
    store = SqlNocStore(f"sqlite:///{tmp_path / 'noc.db'}")
    with store._engine.connect() as c:  # opened before: closed and reopened with the pragma
        assert c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    assert store.defer_checkpoints()
    with store._engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    store.checkpoint()  # the writer's fallback runs
    store.close()


@pytest.mark.parametrize("mode", ["background", "inline"])
@REDIS_MARKS[0]
@REDIS_MARKS[1]
def test_a_consumer_with_background_checkpoints_stores_everything(
    redis: RedisServer, tmp_path: Path, mode: str
) -> None:
    from allo.noc.broker import AlarmPublisher, StreamKeys, partition_topology

    database = f"sqlite:///{tmp_path / 'noc.db'}"
    client: Any = connect(redis.url)
    split = partition_topology(TOPOLOGY, 1)
    engine = NocEngine(
        SqlNocStore(database),
        ScriptedClock(2e6),
        stream=engine_stream(0),
        topology=TOPOLOGY,
        graph=GRAPH,
        history=0,
    )
    consumer = PartitionConsumer(
        client, engine, 0, 1, count=100, lease_seconds=1.0, checkpoint=mode
    )
    consumer.start()
    AlarmPublisher(client, split, keys=StreamKeys()).publish(alarms(600), rate=None)
    while consumer.poll(block=False):
        pass
    consumer.release()
    report = consumer.report.to_json()
    assert report["accepted"] == 600
    assert report["timings"]["ingest"]["p50_ms"] is not None  # type: ignore[index]
    if mode == "background":
        assert report["checkpoints"] is not None
        with engine.store._engine.connect() as c:  # type: ignore[attr-defined]
            assert c.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    else:
        assert report["checkpoints"] is None
    with engine.store._engine.connect() as c:  # type: ignore[attr-defined]
        assert c.execute(text("SELECT count(*) FROM noc_alarms")).scalar() == 600
    engine.close()
    client.close()


CONSUME = ["noc", "consume", "--partition", "0", "--partitions", "1", "--redis", "redis://x"]


def test_an_unknown_checkpoint_mode_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [*CONSUME, "--checkpoint", "sometimes"],
        env={"ALLO_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.exit_code == 2 and "--checkpoint must be one of" in result.output


def busy_writer(path: Path, bound: int, *, helped: bool) -> tuple[BackgroundCheckpointer, int]:
    """40 batches of a writer that is always inside a transaction when a pass ends (its
    read snapshot taken before the pass, its commit after), as a consumer committing
    every few milliseconds is; ``helped``: it checkpoints between batches when asked.
    Returns the checkpointer and the size of the WAL file at the end."""
    writer = wal_database(path)
    checkpointer = BackgroundCheckpointer(str(path), max_wal_bytes=bound)
    other = sqlite3.connect(path, isolation_level=None)
    for _ in range(40):
        writer.execute("BEGIN")
        writer.execute("SELECT count(*) FROM t").fetchall()  # its snapshot: before the pass
        checkpointer.run_pass(other)  # copies every frame committed so far
        writer.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 100)
        writer.execute("COMMIT")
        if helped and checkpointer.needs_inline():  # as the consumer does after a batch
            writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            checkpointer.done_inline()
    assert writer.execute("SELECT count(*) FROM t").fetchone() == (4000,)
    size = wal_size(path)  # before closing: the last connection checkpoints and removes it
    writer.close()
    other.close()
    return checkpointer, size


def test_the_writer_restarts_a_wal_that_a_busy_writer_kept_growing(tmp_path: Path) -> None:
    bound = 256 * 1024
    alone, size = busy_writer(tmp_path / "alone.db", bound, helped=False)
    # every pass copied all it saw, yet the WAL never started over: it holds every page
    assert alone.restarts == 0 and alone.failures == 0
    assert size > 2_000_000
    helped, size = busy_writer(tmp_path / "helped.db", bound, helped=True)
    # the writer's own pass between two transactions lets the next one start it over
    assert helped.inline >= 3 and helped.restarts >= 3
    assert size < 2 * bound
