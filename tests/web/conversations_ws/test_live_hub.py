"""The live hub: delivery across threads, bounded queues, cleanup."""

from __future__ import annotations

import asyncio
import threading

import pytest

from allo.web.live import ADVISORS, RESYNC, LiveHub, announce, conversation_topic


def test_events_published_from_other_threads_arrive_in_order() -> None:
    hub = LiveHub()

    async def scenario() -> list[object]:
        subscription = hub.subscribe("t")
        publisher = threading.Thread(target=lambda: [hub.publish("t", {"n": n}) for n in range(5)])
        publisher.start()
        publisher.join()
        received: list[object] = []
        while len(received) < 5:
            received.extend(e["n"] for e in await subscription.next_batch())
        subscription.close()
        return received

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]
    assert hub.subscribers("t") == 0


def test_a_slow_subscriber_never_blocks_and_is_told_to_resync() -> None:
    hub = LiveHub(max_pending=4)

    async def scenario() -> tuple[int, list[object], list[object]]:
        slow = hub.subscribe("t")
        other = hub.subscribe("t")
        handed = sum(hub.publish("t", {"n": n}) for n in range(1000))  # nobody reads yet
        await asyncio.sleep(0)  # the loop delivers what it was handed
        first = await slow.next_batch()
        assert slow.dropped == other.dropped == 996  # each kept 4 of 1000
        hub.publish("t", {"n": "after"})
        second = await slow.next_batch()
        return handed, first, second

    handed, first, second = asyncio.run(scenario())
    assert handed == 2000
    assert first == [RESYNC]  # events were lost: look again at everything
    assert second == [{"n": "after"}]  # then back to normal


def test_subscribers_of_a_closed_loop_are_dropped() -> None:
    hub = LiveHub()

    async def subscribe() -> None:
        hub.subscribe("t")

    asyncio.run(subscribe())  # the loop is closed when run() returns
    assert hub.subscribers("t") == 1
    assert hub.publish("t", {"n": 1}) == 0
    assert hub.subscribers("t") == 0


def test_announce_wakes_the_conversation_and_the_queue() -> None:
    hub = LiveHub()

    async def scenario() -> tuple[list[object], list[object]]:
        chat = hub.subscribe(conversation_topic("c_1"))
        desk = hub.subscribe(ADVISORS)
        announce(hub, "c_1")
        announce(hub, "c_1", queue=True, taken_by="Anne")
        await asyncio.sleep(0)
        return await chat.next_batch(), await desk.next_batch()

    chat, desk = asyncio.run(scenario())
    assert chat == [{"kind": "changed", "conversation_id": "c_1"}] * 2
    assert desk == [{"kind": "queue", "conversation_id": "c_1", "taken_by": "Anne"}]


def test_queue_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_pending"):
        LiveHub(max_pending=0)


def test_a_quiet_subscriber_resynchronises_after_the_delay() -> None:
    hub = LiveHub(quiet=0.05)  # changes made by another worker never reach this hub

    async def scenario() -> list[object]:
        subscription = hub.subscribe("t")
        return await subscription.next_batch()

    assert asyncio.run(scenario()) == [RESYNC]
    with pytest.raises(ValueError, match="quiet"):
        LiveHub(quiet=0)
