"""Live events for the chat sockets: who must look again at which conversation, now.

:class:`LiveHub` is a small in-process publish/subscribe board. REST handlers run in a
threadpool and WebSocket handlers on the event loop, so :meth:`LiveHub.publish` may be
called from any thread: it hands each event to the subscriber's own loop with
``loop.call_soon_threadsafe`` and returns at once. Every subscriber has a bounded queue;
when a slow one lets it fill up, further events for it are dropped and it is told to
resynchronise instead, so a publisher never waits for a reader.

Events are hints, not the data: "conversation X changed", "the advisor is typing", "the
queue changed". A socket that receives one reads what is new from the conversation store
(turns after the last one it sent, the current status) and sends that. The store stays
the one source of truth, so turns go out in order, without duplicates, and nothing is
lost when events are dropped, reordered or coalesced.

The hub lives in one process. With several Uvicorn workers (or several servers), a
message posted to one worker does not wake the sockets held by another; so that such a
deployment stays correct, a socket with nothing to read for ``SAFETY_RESYNC_SECONDS``
resynchronises anyway (one cheap store read): changes made through another process show
within that delay. Instant delivery across processes would need a broker carrying the
same small hints (PostgreSQL ``LISTEN/NOTIFY``, Redis pub/sub or NATS).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ADVISORS",
    "RESYNC",
    "SAFETY_RESYNC_SECONDS",
    "LiveHub",
    "Subscription",
    "announce",
    "conversation_topic",
    "hub_of",
]

Event = Mapping[str, Any]

#: the topic of the advisors' queue (new handoffs, takes, closes, new customer messages)
ADVISORS = "advisors"
#: what :meth:`Subscription.next_batch` returns after events were dropped for it
RESYNC: Event = {"kind": "resync"}
#: quiet seconds after which a subscriber resynchronises anyway (changes made by another
#: worker process never reach this hub)
SAFETY_RESYNC_SECONDS = 5.0
#: events a subscriber may have pending before it must resynchronise
DEFAULT_PENDING = 64


def conversation_topic(conversation_id: str) -> str:
    """The topic of one conversation's changes."""
    return "conversation:" + conversation_id


class Subscription:
    """One socket's mailbox: the topics it follows and its pending events.

    Made by :meth:`LiveHub.subscribe` on the socket's event loop; read only there.
    """

    def __init__(self, hub: LiveHub, loop: asyncio.AbstractEventLoop, max_pending: int) -> None:
        self._hub = hub
        self._loop = loop
        self._queue: asyncio.Queue[Event] = asyncio.Queue(max_pending)
        self._overflowed = False
        self.dropped = 0  # events dropped because this subscriber was too slow
        self.topics: set[str] = set()

    def follow(self, topic: str) -> None:
        """Receive the events of ``topic`` too."""
        self._hub._attach(self, topic)

    def unfollow(self, topic: str) -> None:
        self._hub._detach(self, topic)

    def close(self) -> None:
        """Stop receiving anything (call when the socket ends)."""
        for topic in list(self.topics):
            self._hub._detach(self, topic)

    def _deliver(self, event: Event) -> None:
        """Runs on the subscriber's loop: queue the event, or note the overflow."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._overflowed = True
            self.dropped += 1

    def _notify(self, event: Event) -> bool:
        """Called by publishers from any thread; False when the loop is gone."""
        try:
            self._loop.call_soon_threadsafe(self._deliver, event)
        except RuntimeError:  # the loop was closed: the socket is gone
            return False
        return True

    async def next_batch(self) -> list[Event]:
        """Wait for at least one event, then take every pending one.

        After an overflow, or the hub's ``quiet`` seconds without any event, the batch is
        ``[RESYNC]``: some events were lost (or made in another process), so the reader
        must look again at everything it follows.
        """
        try:
            first = await asyncio.wait_for(self._queue.get(), self._hub.quiet)
        except TimeoutError:
            return [RESYNC]
        batch = [first]
        while not self._queue.empty():
            batch.append(self._queue.get_nowait())
        if self._overflowed:
            self._overflowed = False
            return [RESYNC]
        return batch


class LiveHub:
    """Topics and their subscribers, shared by the REST and WebSocket handlers."""

    def __init__(
        self, max_pending: int = DEFAULT_PENDING, quiet: float | None = SAFETY_RESYNC_SECONDS
    ) -> None:
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        if quiet is not None and quiet <= 0:
            raise ValueError("quiet must be positive seconds, or None to wait for events only")
        self.max_pending = max_pending
        self.quiet = quiet
        self._lock = threading.Lock()
        self._topics: dict[str, set[Subscription]] = {}

    def subscribe(self, *topics: str) -> Subscription:
        """A new subscription bound to the running event loop (call it from a coroutine)."""
        subscription = Subscription(self, asyncio.get_running_loop(), self.max_pending)
        for topic in topics:
            subscription.follow(topic)
        return subscription

    def publish(self, topic: str, event: Event) -> int:
        """Hand ``event`` to every subscriber of ``topic``; never blocks on them.

        Safe from any thread. Returns how many subscribers it was handed to.
        """
        with self._lock:
            targets = list(self._topics.get(topic, ()))
        handed = 0
        for subscription in targets:
            if subscription._notify(event):
                handed += 1
            else:
                subscription.close()
        return handed

    def subscribers(self, topic: str) -> int:
        """How many subscriptions follow ``topic`` (for tests and metrics)."""
        with self._lock:
            return len(self._topics.get(topic, ()))

    def _attach(self, subscription: Subscription, topic: str) -> None:
        with self._lock:
            self._topics.setdefault(topic, set()).add(subscription)
            subscription.topics.add(topic)

    def _detach(self, subscription: Subscription, topic: str) -> None:
        with self._lock:
            followers = self._topics.get(topic)
            if followers is not None:
                followers.discard(subscription)
                if not followers:
                    del self._topics[topic]
            subscription.topics.discard(topic)


_hub_lock = threading.Lock()


def hub_of(state: Any) -> LiveHub:
    """The application's hub (``app.state.live``), made on first use."""
    found: LiveHub | None = getattr(state, "live", None)
    if found is None:
        with _hub_lock:
            found = getattr(state, "live", None)
            if found is None:
                found = LiveHub()
                state.live = found
    return found


def announce(
    hub: LiveHub, conversation_id: str, *, queue: bool = False, taken_by: str | None = None
) -> None:
    """Tell the sockets that a conversation changed (new turns or status).

    ``queue`` also wakes the advisors' queue (a handoff, a take, a close, a new customer
    message while waiting); ``taken_by`` names the advisor who just took it, whose
    sockets then follow the conversation.
    """
    hub.publish(
        conversation_topic(conversation_id), {"kind": "changed", "conversation_id": conversation_id}
    )
    if queue:
        hub.publish(
            ADVISORS, {"kind": "queue", "conversation_id": conversation_id, "taken_by": taken_by}
        )
