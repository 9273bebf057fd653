"""Commands sent in one write on a pooled connection, against a real Redis."""

from __future__ import annotations

from typing import Any

import pytest

from allo.noc.broker.pipelined import ack_and_read, entries_of, send_commands


def _fill(client: Any, key: str, count: int) -> list[bytes]:
    return [client.xadd(key, {"alarm": f"a{i}", "n": str(i)}) for i in range(count)]


def test_it_acknowledges_and_reads_what_xreadgroup_would(client: Any) -> None:
    client.xgroup_create("s", "g", id="0", mkstream=True)
    added = _fill(client, "s", 7)
    first = client.xreadgroup("g", "c", {"s": ">"}, count=3)[0][1]
    assert [entry_id for entry_id, _ in first] == added[:3]

    ahead = ack_and_read(client, "s", "g", "c", [i.decode() for i in added[:3]], 3)

    expected = [(added[i], {b"alarm": f"a{i}".encode(), b"n": str(i).encode()}) for i in (3, 4, 5)]
    assert ahead == expected
    pending = client.xpending("s", "g")
    assert pending["pending"] == 3  # the three read ahead; the three acknowledged are gone
    assert (pending["min"], pending["max"]) == (added[3], added[5])


def test_nothing_new_reads_an_empty_list(client: Any) -> None:
    client.xgroup_create("s", "g", id="0", mkstream=True)
    added = _fill(client, "s", 2)
    client.xreadgroup("g", "c", {"s": ">"}, count=2)

    assert ack_and_read(client, "s", "g", "c", [i.decode() for i in added], 10) == []
    assert client.xpending("s", "g")["pending"] == 0


def test_every_reply_is_read_and_the_first_error_raised(client: Any) -> None:
    """As in a pipeline: every command runs, the first error reply is raised once all the
    replies are read, and the connection goes back to the pool clean (the client's next
    command runs on the same connection, which a reply left unread would have closed)."""
    import redis

    client.set("a", "text")
    before = client.client_id()
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        send_commands(
            client,
            [("LPUSH", "a", "x"), ("SET", "b", "2"), ("INCR", "a"), ("SET", "c", "3")],
        )
    assert client.client_id() == before
    assert (client.get("b"), client.get("c")) == (b"2", b"3")  # after the errors, they ran
    assert send_commands(client, [("GET", "a"), ("EXISTS", "b", "d")]) == [b"text", 1]


def test_a_timeout_closes_the_connection_with_its_late_reply(redis: Any) -> None:
    """A reply that comes after the timeout must not be read as the next command's (redis-py
    closes the connection on a timeout; ``send_commands`` closes it on any other
    interruption, before it goes back to the pool)."""
    import redis as redis_py

    client = redis_py.Redis.from_url(redis.url, socket_timeout=0.3)
    try:
        with pytest.raises(redis_py.TimeoutError):
            send_commands(client, [("XREAD", "BLOCK", 1000, "STREAMS", "s", "$")])
        assert client.set("x", "1") is True  # on a new connection: no wait for the XREAD
        assert client.get("x") == b"1"
    finally:
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
