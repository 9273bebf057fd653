"""Writers of one SQLite file take turns across processes (``WriterTurns``), crash-safely."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection as Pipe
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from allo.assistant.store import (
    Change,
    Conversation,
    ConversationConflict,
    ConversationStore,
    Turn,
    conversations,
)
from allo.storage.writer_turns import WriterTurns, writer_lock_path

pytestmark = pytest.mark.skipif(os.name != "posix", reason="flock is POSIX")
spawn = multiprocessing.get_context("spawn")


def _hold(lock_path: str, pipe: Pipe) -> None:
    """In a child process: take the writers' turn, say so, keep it until told to let go."""
    turns = WriterTurns(Path(lock_path))
    with turns:
        pipe.send("held")
        pipe.recv()  # "release", or never (the test kills this process)
    pipe.send("released")


def _child_holding(lock_path: Path) -> tuple[multiprocessing.process.BaseProcess, Pipe]:
    mine, theirs = spawn.Pipe()
    child = spawn.Process(target=_hold, args=(str(lock_path), theirs), daemon=True)
    child.start()
    assert mine.poll(60), "the child process never took the writers' turn"
    assert mine.recv() == "held"
    return child, mine


def test_the_lock_file_sits_beside_a_sqlite_file(tmp_path: Path) -> None:
    database = tmp_path / "allo.db"
    assert writer_lock_path(f"sqlite:///{database}") == Path(f"{database}-writers.lock")
    assert writer_lock_path("sqlite://") is None
    assert writer_lock_path("sqlite:///:memory:") is None
    assert writer_lock_path("postgresql+psycopg://u:p@db/allo") is None


def test_a_write_waits_while_another_process_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'allo.db'}"
    store = ConversationStore(url)
    store.migrate()
    child, pipe = _child_holding(writer_lock_path(url) or Path())
    done = threading.Event()

    def create() -> None:
        store.create("c_waiting_for_its_turn", "hash", 1.0)
        done.set()

    writer = threading.Thread(target=create)
    writer.start()
    try:
        assert not done.wait(0.5), "the write did not wait for the other process's turn"
        pipe.send("release")
        assert done.wait(30), "the write did not go ahead once the other process let go"
        assert store.get("c_waiting_for_its_turn") is not None
    finally:
        writer.join(30)
        child.join(30)
        store.close()


def test_a_killed_writer_never_leaves_the_turn_taken(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'allo.db'}"
    store = ConversationStore(url)
    store.migrate()
    child, _pipe = _child_holding(writer_lock_path(url) or Path())
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)  # kill -9 while holding the turn
    child.join(30)
    started = time.monotonic()
    store.create("c_after_a_crash", "hash", 1.0)
    assert time.monotonic() - started < 10
    assert store.get("c_after_a_crash") is not None
    store.close()


def test_threads_of_one_process_never_write_together(tmp_path: Path) -> None:
    turns = WriterTurns(tmp_path / "allo.db-writers.lock")
    inside, most = 0, 0
    guard = threading.Lock()

    def write() -> None:
        nonlocal inside, most
        for _ in range(50):
            with turns:
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.0001)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    turns.close()
    assert most == 1


def test_an_unusable_lock_file_falls_back_to_sqlite_waiting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    turns = WriterTurns(tmp_path / "no-such-folder" / "allo.db-writers.lock")
    with turns:  # still a turn between threads
        pass
    assert turns.lock_path is None
    assert "writer lock file" in caplog.text and "busy handler" in caplog.text


# -- writes that queue up commit together (GroupCommit) -------------------------------------


def _queue_behind_a_slow_write(
    store: ConversationStore, calls: list[Callable[[], object]]
) -> list[BaseException | None]:
    """Run ``calls`` from threads while a first write holds the commit, so that they batch."""
    entered, release = threading.Event(), threading.Event()

    def slow(connection: Connection) -> None:
        entered.set()
        assert release.wait(30)

    outcomes: list[BaseException | None] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            call()
        except Exception as error:  # recorded for the test to check
            outcomes[index] = error

    first = threading.Thread(target=store._group.run, args=(slow,))
    first.start()
    assert entered.wait(30)
    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(store._group._queue) < len(calls) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(store._group._queue) == len(calls), "the writes did not queue up"
    release.set()
    for thread in [first, *threads]:
        thread.join(30)
    return outcomes


def test_queued_writes_commit_together_and_a_conflict_fails_only_its_write(
    tmp_path: Path,
) -> None:
    store = ConversationStore(f"sqlite:///{tmp_path / 'allo.db'}")
    store.migrate()
    shared = store.create("c_shared_conversation", "hash", 1.0)
    others = [store.create(f"c_other_conversation_{n}", "hash", 1.0) for n in range(3)]
    hello = [Turn(0, "customer", "bonjour", 0.0, {}, "m1")]

    def apply(conversation: Conversation) -> Callable[[], object]:
        return lambda: store.apply(conversation, Change(client_seq=1, turns=hello), 2.0)

    # two changes of the same version of one conversation: one of them must conflict
    outcomes = _queue_behind_a_slow_write(store, [apply(c) for c in [shared, shared, *others]])
    assert sum(isinstance(outcome, ConversationConflict) for outcome in outcomes[:2]) == 1
    assert outcomes[2:] == [None, None, None]
    for conversation in [shared, *others]:
        stored = store.get(conversation.id)
        assert stored is not None and stored.version == 1
        assert [t.text for t in store.turns(conversation.id)] == ["bonjour"]
    store.close()


def test_a_failing_write_in_a_batch_fails_alone(tmp_path: Path) -> None:
    store = ConversationStore(f"sqlite:///{tmp_path / 'allo.db'}")
    store.migrate()
    store.create("c_already_there", "hash", 1.0)
    attempts: list[str] = []

    def create(name: str) -> Callable[[], object]:
        def write(connection: Connection) -> None:
            attempts.append(name)
            row = {"id": name, "customer_hash": "h", "status": "bot", "state": "{}"}
            row |= {"language": "fr", "turn_count": 0, "client_seq": 0, "version": 0}
            connection.execute(insert(conversations).values(created_at=1.0, updated_at=1.0, **row))

        return lambda: store._group.run(write)

    names = ["c_new_conversation_1", "c_already_there", "c_new_conversation_2"]
    outcomes = _queue_behind_a_slow_write(store, [create(name) for name in names])
    assert isinstance(outcomes[1], IntegrityError)
    assert outcomes[0] is None and outcomes[2] is None
    assert all(store.get(name) is not None for name in names)
    # tried in the batch first, then each write alone
    assert attempts.count("c_already_there") == 2 and sorted(attempts[-3:]) == sorted(names)
    store.close()
