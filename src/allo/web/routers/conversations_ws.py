"""Customer and advisor conversations over WebSocket: live turns, statuses and queue.

``WS /v1/conversations/{id}/ws`` (customers) and ``WS /v1/advisor/ws`` (advisors). The
first frame authenticates: ``{"type": "auth", "customer_token": ...}`` or ``{"type":
"auth", "advisor_token": ..., "advisor_name": ...}``. Browsers cannot set headers on a
WebSocket, a token in the URL ends up in access logs and proxy logs, and smuggling it in
``Sec-WebSocket-Protocol`` makes proxies echo and log it too: a first frame is the one
place a browser can put a secret that nothing logs. No cookie is involved, so another
site's page cannot ride a customer's credentials (no cross-site socket hijacking).

A failed authentication closes with 1008 (policy violation) and a reason that never says
whether a conversation id exists. After it, customer messages go through the same
:meth:`Assistant.post` as REST (idempotent ``message_id``, ``seq`` order, limits,
errors). New turns are read from the store when the live hub (:mod:`allo.web.live`)
says a conversation changed, so every socket sends them in seq order, once. A bad frame
gets an ``error`` frame and the socket stays open. Frames are described in
:mod:`allo.web.routers.conversations_ws_frames` and in ``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from fastapi import APIRouter, HTTPException, WebSocket
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketState

from allo.assistant.handoff import AdvisorDesk
from allo.assistant.policy import CustomerMessage
from allo.assistant.session import Assistant
from allo.assistant.store import Conversation, Turn
from allo.config import Settings
from allo.errors import AlloError, NotFoundError
from allo.web.auth import holder_of
from allo.web.live import ADVISORS, RESYNC, LiveHub, Subscription, announce, conversation_topic
from allo.web.live import hub_of as _hub_of
from allo.web.routers.conversations import QueueItemOut, TurnOut, assistant_for
from allo.web.routers.conversations_ws_frames import (
    AckFrame,
    AdvisorAuthFrame,
    CustomerAuthFrame,
    MessageFrame,
    PongFrame,
    QueueFrame,
    ReadyFrame,
    StatusFrame,
    TurnFrame,
    TypingFrame,
    TypingOutFrame,
    WatchFrame,
    docs_router,
    error_frame,
    frame,
)

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["conversations"])

POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
#: seconds a client has to send its auth frame
AUTH_SECONDS = 10.0
#: conversations one advisor socket may follow at once
MAX_WATCHED = 100
#: an advisor's typing is announced at most this often per conversation (seconds)
TYPING_EVERY = 1.0
_NOT_FOUND = "no conversation for this id and token; open one with POST /v1/conversations"


class ClientGone(Exception):  # noqa: N818 - control flow, not an error
    """The client went away."""


class BadFrameError(Exception):
    """A frame that cannot be read; answered by an error frame."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def frame_limit(max_message_chars: int) -> int:
    """Longest text frame read: a longest message JSON-encoded at worst (12 chars per
    character as a ``\\uXXXX`` surrogate pair), plus room for the other fields."""
    return 12 * max_message_chars + 1024


async def read_frame(websocket: WebSocket, limit: int) -> dict[str, Any]:
    """The next JSON object frame; :class:`BadFrameError` for anything else."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise ClientGone
    text = message.get("text")
    if text is None:
        raise BadFrameError("BinaryFrame", "binary frames are refused: send JSON in text frames")
    if len(text) > limit:
        raise BadFrameError(
            "FrameTooLarge",
            f"frame too large ({len(text)} characters, at most {limit}); "
            "send shorter messages, one per frame",
        )
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise BadFrameError("InvalidJSON", "the frame is not JSON; send one JSON object") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise BadFrameError("InvalidFrame", 'a frame is a JSON object with a "type" string')
    return data


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'frame'}: {e['msg']}" for e in error.errors()
    )


class Channel:
    """Sends frames one at a time, whichever task sends them."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._lock = asyncio.Lock()

    async def send(self, text: str) -> None:
        async with self._lock:
            try:
                await self.websocket.send_text(text)
            except (WebSocketDisconnect, RuntimeError, OSError) as error:
                raise ClientGone from error

    async def close(self, code: int, reason: str) -> None:
        """Close if still open (reasons are at most 123 bytes in the protocol)."""
        ws = self.websocket
        if (
            ws.application_state == WebSocketState.CONNECTED
            and ws.client_state == WebSocketState.CONNECTED
        ):
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await ws.close(code, reason.encode("utf-8")[:123].decode("utf-8", "ignore"))


async def first_frame(
    channel: Channel, limit: int, model: type[BaseModel], usage: str
) -> BaseModel | None:
    """The auth frame, or None after closing the socket with the reason."""
    try:
        with anyio.fail_after(AUTH_SECONDS):
            data = await read_frame(channel.websocket, limit)
        return model.model_validate(data)
    except TimeoutError:
        await channel.close(POLICY_VIOLATION, f"authenticate within {AUTH_SECONDS:g} s: {usage}")
    except (BadFrameError, ValidationError):
        await channel.close(POLICY_VIOLATION, f"the first frame must be {usage}")
    except ClientGone:
        pass
    return None


async def run_both(*loops: Callable[[], Awaitable[None]]) -> None:
    """Run the loops until one ends (the client left); a failure propagates."""
    async with anyio.create_task_group() as group:

        async def run(loop: Callable[[], Awaitable[None]]) -> None:
            try:
                await loop()
            except ClientGone:
                pass
            finally:
                group.cancel_scope.cancel()

        for loop in loops:
            group.start_soon(run, loop)


@dataclass
class Followed:
    """What a socket already sent of one conversation."""

    last_seq: int
    status: str | None = None
    advisor: str | None = None


async def send_news(
    channel: Channel, bot: Assistant, conversation_id: str, seen: Followed
) -> Conversation:
    """Send the turns after ``seen.last_seq`` and the status if it changed."""

    def read() -> tuple[Conversation | None, list[Turn]]:
        return bot.store.get(conversation_id), bot.store.turns(conversation_id, seen.last_seq)

    conversation, turns = await run_in_threadpool(read)
    if conversation is None:
        raise ClientGone  # deleted meanwhile: nothing more to say
    for turn in turns:
        if turn.seq > seen.last_seq:
            await channel.send(
                frame(TurnFrame(conversation_id=conversation_id, turn=TurnOut.of(turn)))
            )
            seen.last_seq = turn.seq
    if conversation.status != seen.status or conversation.advisor != seen.advisor:
        seen.status, seen.advisor = conversation.status, conversation.advisor
        await channel.send(
            frame(
                StatusFrame(
                    conversation_id=conversation_id,
                    status=conversation.status,
                    advisor=conversation.advisor,
                )
            )
        )
    return conversation


def _settings(websocket: WebSocket) -> Settings:
    settings: Settings = websocket.app.state.settings
    return settings


# -- customers ---------------------------------------------------------------------------


class CustomerSocket:
    """One customer's socket on one conversation, after authentication."""

    def __init__(
        self,
        channel: Channel,
        bot: Assistant,
        hub: LiveHub,
        subscription: Subscription,
        conversation: Conversation,
        token: str,
        after: int,
        limit: int,
    ) -> None:
        self.channel = channel
        self.bot = bot
        self.hub = hub
        self.subscription = subscription
        self.id = conversation.id
        self._token = token
        self.limit = limit
        self.seen = Followed(
            min(after, conversation.turn_count), conversation.status, conversation.advisor
        )
        self._sync_lock = asyncio.Lock()

    async def sync(self) -> None:
        async with self._sync_lock:
            await send_news(self.channel, self.bot, self.id, self.seen)

    async def run(self) -> None:
        ready = ReadyFrame(
            conversation_id=self.id, status=self.seen.status, last_seq=self.seen.last_seq
        )
        await self.channel.send(frame(ready))
        await self.sync()  # the replay

        async def forward() -> None:
            while True:
                batch = await self.subscription.next_batch()
                if any(e.get("kind") == "typing" for e in batch):
                    await self.channel.send(frame(TypingOutFrame(conversation_id=self.id)))
                if any(e.get("kind") != "typing" for e in batch):
                    await self.sync()

        await run_both(self.read_loop, forward)

    async def read_loop(self) -> None:
        while True:
            try:
                data = await read_frame(self.channel.websocket, self.limit)
            except BadFrameError as error:
                await self.channel.send(error_frame(error.kind, str(error)))
                continue
            kind = data["type"]
            if kind == "message":
                await self.message(data)
            elif kind == "ping":
                await self.channel.send(frame(PongFrame()))
            elif kind == "auth":
                await self.channel.send(error_frame("InvalidFrame", "already authenticated"))
            else:
                await self.channel.send(
                    error_frame(
                        "UnknownFrameType",
                        f"unknown frame type {kind[:40]!r}; customers send message or ping",
                    )
                )

    async def message(self, data: Mapping[str, Any]) -> None:
        raw_id = data.get("message_id")
        shown_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 64 else None
        try:
            body = MessageFrame.model_validate(data)
            message = CustomerMessage(text=body.text, payload=body.payload)
        except ValidationError as error:
            await self.channel.send(error_frame("InvalidRequest", _problems(error), shown_id))
            return
        except AlloError:
            await self.channel.send(
                error_frame(
                    "InvalidInputError",
                    "send either 'text' or 'payload', not both or none",
                    shown_id,
                )
            )
            return
        try:
            reply = await run_in_threadpool(
                self.bot.post, self.id, self._token, body.message_id, message, body.seq
            )
        except NotFoundError:
            await self.channel.close(POLICY_VIOLATION, _NOT_FOUND)
            raise ClientGone from None
        except AlloError as error:
            await self.channel.send(error_frame(type(error).__name__, str(error), shown_id))
            return
        if not reply.replayed:
            announce(self.hub, self.id, queue=reply.status != "bot")
        await self.sync()
        await self.channel.send(
            frame(
                AckFrame(
                    message_id=body.message_id,
                    status=reply.status,
                    replayed=reply.replayed,
                    action=reply.action,
                )
            )
        )


_CUSTOMER_AUTH = '{"type": "auth", "customer_token": "..."}'


class _Runs(Protocol):
    async def run(self) -> None: ...


async def serve(
    socket: _Runs, channel: Channel, subscription: Subscription, who: str, advice: str
) -> None:
    """Run a socket until its client goes; an unexpected failure is logged (never the
    frames: they hold tokens) and closes the socket with ``advice``."""
    try:
        await socket.run()
    except ClientGone:
        pass
    except Exception:
        logger.exception("%s socket failed", who)
        await channel.close(INTERNAL_ERROR, f"internal error; {advice}")
    finally:
        subscription.close()


@router.websocket("/conversations/{conversation_id}/ws")
async def customer_socket(websocket: WebSocket, conversation_id: str) -> None:
    """A customer's conversation, live (see the documenting GET operation)."""
    await websocket.accept()
    channel = Channel(websocket)
    limit = frame_limit(_settings(websocket).assistant.max_message_chars)
    auth = await first_frame(channel, limit, CustomerAuthFrame, _CUSTOMER_AUTH)
    if not isinstance(auth, CustomerAuthFrame):
        return
    bot = assistant_for(websocket.app.state)
    try:
        conversation = await run_in_threadpool(bot.authorised, conversation_id, auth.customer_token)
    except NotFoundError:
        await channel.close(POLICY_VIOLATION, _NOT_FOUND)
        return
    hub = _hub_of(websocket.app.state)
    subscription = hub.subscribe(conversation_topic(conversation.id))
    socket = CustomerSocket(
        channel, bot, hub, subscription, conversation, auth.customer_token, auth.after, limit
    )
    await serve(socket, channel, subscription, "customer", "reconnect and resume with 'after'")


# -- advisors ----------------------------------------------------------------------------


def advisor_display_name(name: str | None) -> str | None:
    """The name as the advisor desk stores it, or None when it is not acceptable."""
    cleaned = " ".join((name or "conseiller").split())
    if not cleaned or len(cleaned) > 128 or not cleaned.isprintable():
        return None
    return cleaned


class AdvisorSocket:
    """One advisor's socket: the queue, the conversations they took or watch."""

    def __init__(
        self,
        channel: Channel,
        bot: Assistant,
        hub: LiveHub,
        subscription: Subscription,
        name: str,
        limit: int,
    ) -> None:
        self.channel = channel
        self.bot = bot
        self.hub = hub
        self.subscription = subscription
        self.name = name
        self.limit = limit
        self.followed: dict[str, Followed] = {}
        self._last_queue: str | None = None
        self._typing_at: dict[str, float] = {}
        self._sync_lock = asyncio.Lock()

    async def send_queue(self) -> None:
        def read() -> list[QueueItemOut]:
            items = AdvisorDesk(self.bot).queue(include_taken=True, limit=500)
            return [QueueItemOut.of(item) for item in items]

        text = frame(QueueFrame(items=await run_in_threadpool(read)))
        if text != self._last_queue:
            self._last_queue = text
            await self.channel.send(text)

    async def sync(self, conversation_id: str) -> None:
        seen = self.followed.get(conversation_id)
        if seen is not None:
            async with self._sync_lock:
                await send_news(self.channel, self.bot, conversation_id, seen)

    def follow(self, conversation: Conversation, after: int) -> None:
        seen = Followed(min(after, conversation.turn_count), None)
        self.followed[conversation.id] = seen
        self.subscription.follow(conversation_topic(conversation.id))

    async def run(self) -> None:
        await self.channel.send(frame(ReadyFrame(advisor=self.name)))

        def taken() -> list[Conversation]:
            mine = self.bot.store.with_status(["with_advisor"], MAX_WATCHED)
            return [c for c in mine if c.advisor == self.name]

        for conversation in await run_in_threadpool(taken):
            self.follow(conversation, conversation.turn_count)  # live turns from now on
            await self.sync(conversation.id)
        await self.send_queue()
        await run_both(self.read_loop, self.forward)

    async def forward(self) -> None:
        while True:
            batch = await self.subscription.next_batch()
            changed: list[str] = []
            queue = False
            for event in batch:
                if event is RESYNC:
                    queue = True
                    changed.extend(self.followed)
                elif event.get("kind") == "queue":
                    queue = True
                    await self._maybe_follow(event)
                elif event.get("kind") == "changed":
                    changed.append(str(event.get("conversation_id")))
            for conversation_id in dict.fromkeys(changed):
                await self.sync(conversation_id)
            if queue:
                await self.send_queue()

    async def _maybe_follow(self, event: Mapping[str, Any]) -> None:
        """Follow a conversation this advisor just took (from any tab or client)."""
        conversation_id = str(event.get("conversation_id"))
        if event.get("taken_by") != self.name or conversation_id in self.followed:
            return
        if len(self.followed) >= MAX_WATCHED:
            return
        conversation = await run_in_threadpool(self.bot.store.get, conversation_id)
        if conversation is not None:
            self.follow(conversation, conversation.turn_count)
            await self.sync(conversation_id)

    async def read_loop(self) -> None:
        while True:
            try:
                data = await read_frame(self.channel.websocket, self.limit)
                await self.handle(data)
            except BadFrameError as error:
                await self.channel.send(error_frame(error.kind, str(error)))
            except ValidationError as error:
                await self.channel.send(error_frame("InvalidRequest", _problems(error)))

    async def handle(self, data: dict[str, Any]) -> None:
        kind = data["type"]
        if kind in ("watch", "unwatch"):
            await self.watch(WatchFrame.model_validate(data))
        elif kind == "typing":
            await self.typing(TypingFrame.model_validate(data).conversation_id)
        elif kind == "ping":
            await self.channel.send(frame(PongFrame()))
        elif kind == "auth":
            await self.channel.send(error_frame("InvalidFrame", "already authenticated"))
        else:
            raise BadFrameError(
                "UnknownFrameType",
                f"unknown frame type {kind[:40]!r}; advisors send watch, unwatch, typing or ping",
            )

    async def watch(self, request: WatchFrame) -> None:
        if request.type == "unwatch":
            self.followed.pop(request.conversation_id, None)
            self.subscription.unfollow(conversation_topic(request.conversation_id))
            return
        try:
            conversation = await run_in_threadpool(self.bot.load, request.conversation_id)
        except NotFoundError as error:
            await self.channel.send(error_frame("NotFoundError", str(error)))
            return
        if conversation.id not in self.followed:
            if len(self.followed) >= MAX_WATCHED:
                raise BadFrameError(
                    "TooManyWatched",
                    f"at most {MAX_WATCHED} conversations per socket; unwatch some first",
                )
            self.follow(conversation, request.after)
        else:
            seen = self.followed[conversation.id]
            seen.last_seq = min(seen.last_seq, request.after)
        await self.sync(conversation.id)

    async def typing(self, conversation_id: str) -> None:
        """Show dots to the customer, at most once a second (read from the store: the
        take may be newer than what this socket has seen)."""
        now = time.monotonic()
        if now - self._typing_at.get(conversation_id, -TYPING_EVERY) < TYPING_EVERY:
            return
        found = await run_in_threadpool(self.bot.store.get, conversation_id)
        if found is None or found.status != "with_advisor" or found.advisor != self.name:
            raise BadFrameError("NotYourConversation", "take the conversation before typing in it")
        self._typing_at[conversation_id] = now
        self.hub.publish(
            conversation_topic(conversation_id),
            {"kind": "typing", "conversation_id": conversation_id},
        )


_ADVISOR_AUTH = '{"type": "auth", "advisor_token": "...", "advisor_name": "..."}'


@router.websocket("/advisor/ws")
async def advisor_socket(websocket: WebSocket) -> None:
    """The advisor desk, live (see the documenting GET operation)."""
    await websocket.accept()
    channel = Channel(websocket)
    settings = _settings(websocket)
    limit = frame_limit(settings.assistant.max_message_chars)
    auth = await first_frame(channel, limit, AdvisorAuthFrame, _ADVISOR_AUTH)
    if not isinstance(auth, AdvisorAuthFrame):
        return
    try:  # the same check as the HTTP routes (allo.web.auth.advisor_name)
        personal = holder_of(
            auth.advisor_token,
            settings.advisor_token,
            settings.advisors,
            setting="ALLO_ADVISOR_TOKEN or ALLO_ADVISORS",
            credential="advisor token",
        )
    except HTTPException as refusal:
        await channel.close(POLICY_VIOLATION, str(refusal.detail))
        return
    # a personal secret's holder is who they are; a typed name only with the shared secret
    name = personal if personal is not None else advisor_display_name(auth.advisor_name)
    if name is None:
        await channel.close(POLICY_VIOLATION, "advisor_name must be 1 to 128 printable characters")
        return
    hub = _hub_of(websocket.app.state)
    subscription = hub.subscribe(ADVISORS)
    bot = assistant_for(websocket.app.state)
    socket = AdvisorSocket(channel, bot, hub, subscription, name, limit)
    await serve(socket, channel, subscription, "advisor", "reconnect")


router.include_router(docs_router)  # the GET operations that document the sockets
