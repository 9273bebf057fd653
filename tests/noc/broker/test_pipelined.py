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


def test_an_error_reply_leaves_a_usable_client(client: Any) -> None:
    """The ``XACK`` fails (no such group): its error is raised, and the unread second reply
    must not be taken as the answer to the client's next command."""
    import redis

    client.xadd("s", {"alarm": "x"})
    with pytest.raises(redis.ResponseError, match="NOGROUP"):
        ack_and_read(client, "s", "missing", "c", ["0-1"], 10)
    assert client.ping() is True
    assert client.xlen("s") == 1


def test_every_command_runs_and_the_first_error_is_raised(client: Any) -> None:
    import redis

    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        send_commands(
            client,
            [("SET", "a", "1"), ("LPUSH", "a", "x"), ("SET", "b", "2"), ("INCR", "a:missing:")],
        )
    assert client.get("b") == b"2"  # the command after the error ran, as in a pipeline
    assert client.get("a:missing:") == b"1"
    assert send_commands(client, [("GET", "a"), ("EXISTS", "b", "c")]) == [b"1", 1]


@pytest.mark.parametrize(
    "reply",
    [
        [[b"s", [[b"1-0", [b"f", b"v", b"g", b"w"]], [b"2-0", None]]]],  # RESP2
        {b"s": [[b"1-0", [b"f", b"v", b"g", b"w"]], [b"2-0", None]]},  # RESP3
    ],
)
def test_both_protocols_give_the_same_entries(reply: Any) -> None:
    assert entries_of(reply) == [(b"1-0", {b"f": b"v", b"g": b"w"}), (b"2-0", None)]


def test_no_reply_and_a_field_without_value() -> None:
    assert entries_of(None) == []
    with pytest.raises(ValueError):
        entries_of([[b"s", [[b"1-0", [b"f", b"v", b"g"]]]]])
