"""The conversation store's hot-path reads: what ``create`` returns, one-checkout lookups."""

from __future__ import annotations

import threading

import pytest

from allo.assistant.policy import CustomerMessage
from allo.assistant.session import Assistant
from allo.assistant.store import Change, ConversationConflict, ConversationStore, Turn
from allo.errors import InvalidInputError, NotFoundError


def test_create_returns_what_get_reads(db_url: str) -> None:
    store = ConversationStore(db_url)
    store.migrate()
    created = store.create("c_12345678", "f" * 64, 1000.5)
    assert store.get("c_12345678") == created
    assert created.status == "bot" and created.state == {} and created.version == 0
    store.close()


def test_get_with_message(db_url: str) -> None:
    store = ConversationStore(db_url)
    store.migrate()
    created = store.create("c_12345678", "f" * 64, 1000.0)
    assert store.get_with_message("c_unknown1", "m1") == (None, None)
    assert store.get_with_message("c_12345678", "m1") == (created, None)
    customer = Turn(0, "customer", "bonjour", 0.0, {}, "m1")
    store.apply(created, Change(client_seq=1, turns=[customer]), 1001.0)
    found, turn = store.get_with_message("c_12345678", "m1")
    assert found is not None and found.version == 1 and found.client_seq == 1
    assert turn is not None and (turn.seq, turn.text, turn.message_id) == (1, "bonjour", "m1")
    assert store.get_with_message("c_12345678", "m2")[1] is None
    store.close()


def test_stale_version_is_a_conflict_and_writes_nothing(db_url: str) -> None:
    store = ConversationStore(db_url)
    store.migrate()
    created = store.create("c_12345678", "f" * 64, 1000.0)
    store.apply(created, Change(state={"a": 1}), 1001.0)
    with pytest.raises(ConversationConflict, match="changed meanwhile"):
        store.apply(created, Change(state={"a": 2}, turns=[Turn(0, "assistant", "x", 0.0)]), 1002.0)
    again = store.get("c_12345678")
    assert again is not None and again.state == {"a": 1} and store.turns("c_12345678") == []
    store.close()


def test_bad_message_id_on_someone_elses_conversation_is_not_found(assistant: Assistant) -> None:
    opened = assistant.open()
    with pytest.raises(NotFoundError):
        assistant.post(opened.conversation_id, "wrong-token", "bad id!", CustomerMessage(text="x"))
    with pytest.raises(InvalidInputError, match="message_id"):
        assistant.post(
            opened.conversation_id, opened.customer_token, "bad id!", CustomerMessage(text="x")
        )


def test_concurrent_writers_on_one_file(db_url: str) -> None:
    """Threads writing at once: each conversation's turns stay whole and numbered in order,
    and of two writers racing on the same version exactly one wins."""
    store = ConversationStore(db_url)
    store.migrate()
    ids = [f"c_thread{n:04d}" for n in range(12)]
    for cid in ids:
        store.create(cid, "f" * 64, 1000.0)
    start = threading.Barrier(len(ids))

    def chat(cid: str) -> None:
        start.wait(10)
        for n in range(5):
            current = store.get(cid)
            assert current is not None
            said = Turn(0, "customer", f"message {n}", 0.0, {}, f"m{n}")
            store.apply(current, Change(client_seq=n + 1, turns=[said]), 1001.0 + n)

    threads = [threading.Thread(target=chat, args=(cid,)) for cid in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for cid in ids:
        assert [(t.seq, t.text) for t in store.turns(cid)] == [
            (n + 1, f"message {n}") for n in range(5)
        ]

    current = store.get(ids[0])
    assert current is not None
    outcomes: list[str] = []
    race = threading.Barrier(2)

    def racer(text: str) -> None:
        race.wait(10)
        try:
            store.apply(current, Change(turns=[Turn(0, "assistant", text, 0.0)]), 2000.0)
            outcomes.append("written")
        except ConversationConflict:
            outcomes.append("conflict")

    racers = [threading.Thread(target=racer, args=(text,)) for text in ("a", "b")]
    for thread in racers:
        thread.start()
    for thread in racers:
        thread.join(60)
    assert sorted(outcomes) == ["conflict", "written"]
    assert len(store.turns(ids[0])) == 6
    store.close()
