"""Commands sent in one write on a held connection, against a real Redis."""

from __future__ import annotations

from typing import Any

import pytest

from allo.noc.broker.pipelined import HeldConnection, ack_and_read, entries_of, read_group
from allo.testing.redis import REDIS_MARKS


def needs_redis(test: Any) -> Any:
    """Runs a real Redis: skipped without one, except in CI (the others run anywhere)."""
    for mark in REDIS_MARKS:
        test = mark(test)
    return test


def _fill(client: Any, key: str, count: int) -> list[bytes]:
    return [client.xadd(key, {"alarm": f"a{i}", "n": str(i)}) for i in range(count)]


@needs_redis
def test_it_acknowledges_and_reads_what_xreadgroup_would(client: Any) -> None:
    client.xgroup_create("s", "g", id="0", mkstream=True)
    added = _fill(client, "s", 7)
    first = client.xreadgroup("g", "c", {"s": ">"}, count=3)[0][1]
    assert [entry_id for entry_id, _ in first] == added[:3]

    link = HeldConnection(client)
    ahead = ack_and_read(link, "s", "g", "c", [i.decode() for i in added[:3]], 3)

    expected = [(added[i], {b"alarm": f"a{i}".encode(), b"n": str(i).encode()}) for i in (3, 4, 5)]
    assert ahead == expected
    pending = client.xpending("s", "g")
    assert pending["pending"] == 3  # the three read ahead; the three acknowledged are gone
    assert (pending["min"], pending["max"]) == (added[3], added[5])
    assert read_group(link, "s", "g", "c", "0", 10) == expected  # pending ones, by cursor
    assert read_group(link, "s", "g", "c", ">", 10) == [(added[6], {b"alarm": b"a6", b"n": b"6"})]
    assert read_group(link, "s", "g", "c", ">", 10, block_ms=10) == []  # waited, nothing
    link.release()


@needs_redis
def test_nothing_new_reads_an_empty_list(client: Any) -> None:
    client.xgroup_create("s", "g", id="0", mkstream=True)
    added = _fill(client, "s", 2)
    client.xreadgroup("g", "c", {"s": ">"}, count=2)

    link = HeldConnection(client)
    assert ack_and_read(link, "s", "g", "c", [i.decode() for i in added], 10) == []
    link.release()
    assert client.xpending("s", "g")["pending"] == 0


@needs_redis
def test_every_reply_is_read_and_the_first_error_raised(client: Any) -> None:
    """As in a pipeline: every command runs, the first error reply is raised once all the
    replies are read, and the connection stays usable (the next send runs on the same
    connection, which a reply left unread would have closed)."""
    import redis

    client.set("a", "text")
    link = HeldConnection(client)
    before = link.send([("CLIENT", "ID")])[0]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        link.send([("LPUSH", "a", "x"), ("SET", "b", "2"), ("INCR", "a"), ("SET", "c", "3")])
    assert link.send([("CLIENT", "ID")])[0] == before
    assert (client.get("b"), client.get("c")) == (b"2", b"3")  # after the errors, they ran
    assert link.send([("GET", "a"), ("EXISTS", "b", "d")]) == [b"text", 1]
    link.release()


@needs_redis
def test_the_connection_is_held_between_sends_and_given_back(client: Any) -> None:
    """One checkout for many round trips (the pool's checkout is what it saves), back in
    the pool after ``release`` and used again by the client."""
    link = HeldConnection(client)
    first = link.send([("CLIENT", "ID")])[0]
    assert client.client_id() != first  # held: the client's own command takes another
    assert [link.send([("CLIENT", "ID")])[0] for _ in range(3)] == [first] * 3
    link.release()
    link.release()  # twice is harmless
    assert client.client_id() == first  # back in the pool, handed out again


@needs_redis
def test_a_timeout_closes_the_connection_with_its_late_reply(redis: Any) -> None:
    """A reply that comes after the timeout must not be read as the next command's (redis-py
    closes the connection on a timeout; ``HeldConnection`` closes it on any other
    interruption): the next send opens it again and gets its own reply."""
    import redis as redis_py

    client = redis_py.Redis.from_url(redis.url, socket_timeout=0.3)
    link = HeldConnection(client)
    try:
        with pytest.raises(redis_py.TimeoutError):
            link.send([("XREAD", "BLOCK", 1000, "STREAMS", "s", "$")])
        assert link.send([("SET", "x", "1"), ("GET", "x")]) == [b"OK", b"1"]
    finally:
        link.release()
        client.close()


@pytest.mark.parametrize(
    "reply",
    [
        [[b"s", [[b"1-0", [b"f", b"v", b"g", b"w"]], [b"2-0", None]]]],  # RESP2
        {b"s": [[b"1-0", [b"f", b"v", b"g", b"w"]], [b"2-0", None]]},  # RESP3
    ],
)
def test_both_protocols_give_the_same_entries(reply: Any) -> None:
    assert entries_of(reply) == [(b"1-0", {b"f": b"v", b"g": b"w"}), (b"2-0", {})]


def test_no_reply_and_a_field_without_value() -> None:
    assert entries_of(None) == []
    with pytest.raises(ValueError):
        entries_of([[b"s", [[b"1-0", [b"f", b"v", b"g"]]]]])
