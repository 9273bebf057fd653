"""Customer conversations and the advisor queue over REST.

Customers: ``POST /v1/conversations`` (id + customer token), then messages and reads with
the ``X-Customer-Token`` header. Advisors: ``/v1/advisor/...`` with the ``X-Advisor-Token``
header, checked against the ``ALLO_ADVISOR_TOKEN`` setting (503 while unset).

Every change made here is announced on the live hub (:mod:`allo.web.live`), so the
WebSocket clients (:mod:`allo.web.routers.conversations_ws`) see REST messages, takes,
replies and closes at once. Tutorial illustrations are served by
``GET /v1/tutorial-images/{name}``, from the tutorials' ``images`` folder only.

The customer endpoints and the dependencies are ``async``: FastAPI runs a sync
dependency, a sync endpoint and the response check of a sync endpoint each in its own
trip through the thread pool (five for a message), and under load every trip waits for
a free thread and for the GIL. Here only the work that blocks (the store, the models)
goes to the thread pool, once per request.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from allo.assistant.flows import demo_folder
from allo.assistant.handoff import AdvisorDesk, QueueItem
from allo.assistant.policy import CustomerMessage
from allo.assistant.session import Assistant, build_assistant
from allo.assistant.store import Conversation, ConversationConflict, Turn
from allo.errors import NotFoundError
from allo.web.auth import advisor_name
from allo.web.errors import error_body
from allo.web.live import LiveHub, announce, hub_of

router = APIRouter(prefix="/v1", tags=["conversations"])
_build_lock = threading.Lock()


async def assistant(request: Request) -> Assistant:
    """The app's assistant (``app.state.assistant``), built on first use if not given."""
    found: Assistant | None = getattr(request.app.state, "assistant", None)
    if found is not None:
        return found
    return await run_in_threadpool(assistant_for, request.app.state)  # trains: seconds


def assistant_for(state: Any) -> Assistant:
    """The assistant of an app's ``state`` (for WebSocket handlers as for REST ones)."""
    found: Assistant | None = getattr(state, "assistant", None)
    if found is None:
        with _build_lock:
            found = getattr(state, "assistant", None)
            if found is None:
                found = build_assistant(state.knowledge)
                state.assistant = found
    return found


async def customer_token(
    x_customer_token: Annotated[str | None, Header()] = None,
) -> str:
    if not x_customer_token:
        raise HTTPException(
            401, "missing X-Customer-Token header: send the token POST /v1/conversations gave"
        )
    return x_customer_token


async def live_hub(request: Request) -> LiveHub:
    """The app's live hub, where changes are announced to the sockets."""
    return hub_of(request.app.state)


AssistantDep = Annotated[Assistant, Depends(assistant)]
LiveDep = Annotated[LiveHub, Depends(live_hub)]
CustomerToken = Annotated[str, Depends(customer_token)]
Advisor = Annotated[str, Depends(advisor_name)]

#: the only folder images are served from, and the only types served
IMAGES = demo_folder() / "images"
IMAGE_TYPES = {
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
}
_IMAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
#: an image is shown in an <img>, where nothing runs; if opened directly, an SVG still
#: may not run scripts or load anything
_IMAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    "Cache-Control": "public, max-age=3600",
    "Cross-Origin-Resource-Policy": "cross-origin",
}


def image_file(name: str) -> Path | None:
    """The file of an image name if it is one of the tutorial images, else None.

    Only plain names of files directly in :data:`IMAGES` with a known extension qualify:
    no folder, no ``..``, no link leading elsewhere.
    """
    if not _IMAGE_NAME.match(name) or ".." in name:
        return None
    if Path(name).suffix.lower() not in IMAGE_TYPES:
        return None
    root = IMAGES.resolve()
    path = (root / name).resolve()
    if path.parent != root or not path.is_file():
        return None
    return path


def image_url(path: str) -> str | None:
    """The URL of a tutorial image given as ``images/NAME`` (how tutorials name them)."""
    folder, _, name = path.partition("/")
    if folder != "images" or image_file(name) is None:
        return None
    return f"/v1/tutorial-images/{name}"


class TurnOut(BaseModel):
    seq: int
    role: str
    text: str
    created_at: float
    payload: dict[str, Any] = {}
    message_id: str | None = None
    reply_to: int | None = None

    @classmethod
    def of(cls, turn: Turn) -> TurnOut:
        payload = turn.payload
        if payload.get("kind") == "image":
            url = image_url(str(payload.get("path", "")))
            payload = {**payload, "url": url} if url else payload
        return cls(
            seq=turn.seq,
            role=turn.role,
            text=turn.text,
            created_at=turn.created_at,
            payload=payload,
            message_id=turn.message_id,
            reply_to=turn.reply_to,
        )


class OpenedOut(BaseModel):
    conversation_id: str
    customer_token: str
    status: str = "bot"


class MessageIn(BaseModel):
    """Either ``text`` or a button ``payload``; ``message_id`` makes retries safe."""

    message_id: str = Field(description="unique per message; a resend returns the first reply")
    text: str | None = None
    payload: str | None = None
    seq: int | None = Field(default=None, description="1, 2, 3...: detects lost messages")


class ReplyOut(BaseModel):
    conversation_id: str
    status: str
    replayed: bool
    action: str | None
    turns: list[TurnOut]


class ConversationOut(BaseModel):
    conversation_id: str
    status: str
    turns: list[TurnOut]


class AdvisorConversationOut(ConversationOut):
    advisor: str | None
    summary: dict[str, Any] | None


class QueueItemOut(BaseModel):
    conversation_id: str
    status: str
    summary: dict[str, Any]
    waiting_since: float | None
    advisor: str | None
    last_customer_message: str | None

    @classmethod
    def of(cls, item: QueueItem) -> QueueItemOut:
        return cls(**item.__dict__)


class QueueOut(BaseModel):
    items: list[QueueItemOut]


class AdvisorMessageIn(BaseModel):
    text: str


def _conflict(error: ConversationConflict) -> JSONResponse:
    return JSONResponse(error_body(type(error).__name__, str(error)), status_code=409)


def _advisor_view(conversation: Conversation, turns: list[Turn]) -> AdvisorConversationOut:
    return AdvisorConversationOut(
        conversation_id=conversation.id,
        status=conversation.status,
        turns=[TurnOut.of(t) for t in turns],
        advisor=conversation.advisor,
        summary=conversation.summary,
    )


# -- customers -------------------------------------------------------------------------


@router.post("/conversations", response_model=OpenedOut, status_code=201)
async def open_conversation(bot: AssistantDep) -> OpenedOut:
    """Open a conversation; keep the ``customer_token``: every later call needs it."""
    opened = await run_in_threadpool(bot.open)
    return OpenedOut(conversation_id=opened.conversation_id, customer_token=opened.customer_token)


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=ReplyOut,
    responses={409: {"description": "replayed id reused, out of order, closed or raced"}},
)
async def post_message(
    conversation_id: str, body: MessageIn, bot: AssistantDep, token: CustomerToken, live: LiveDep
) -> ReplyOut | JSONResponse:
    """Send a customer message (text or button payload); returns the turns it produced."""
    if (body.text is None) == (body.payload is None):
        return JSONResponse(
            error_body("InvalidInputError", "send either 'text' or 'payload', not both or none"),
            status_code=422,
        )
    message = CustomerMessage(text=body.text, payload=body.payload)
    try:
        reply = await run_in_threadpool(
            bot.post, conversation_id, token, body.message_id, message, body.seq
        )
    except ConversationConflict as error:
        return _conflict(error)
    if not reply.replayed:
        announce(live, reply.conversation_id, queue=reply.status != "bot")
    return ReplyOut(
        conversation_id=reply.conversation_id,
        status=reply.status,
        replayed=reply.replayed,
        action=reply.action,
        turns=[TurnOut.of(t) for t in reply.turns],
    )


@router.get("/conversations/{conversation_id}", response_model=ConversationOut)
async def get_conversation(
    conversation_id: str,
    bot: AssistantDep,
    token: CustomerToken,
    after: Annotated[int, Query(ge=0, description="only turns after this seq")] = 0,
) -> ConversationOut:
    """The conversation's turns (bot, advisor and customer), for its customer only."""
    conversation, turns = await run_in_threadpool(bot.history, conversation_id, token)
    return ConversationOut(
        conversation_id=conversation.id,
        status=conversation.status,
        turns=[TurnOut.of(t) for t in turns if t.seq > after],
    )


# -- advisors --------------------------------------------------------------------------


@router.get("/advisor/queue", response_model=QueueOut)
def advisor_queue(
    bot: AssistantDep,
    _advisor: Advisor,
    include_taken: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> QueueOut:
    """Conversations waiting for an advisor, the longest waiting first, with summaries."""
    items = AdvisorDesk(bot).queue(include_taken=include_taken, limit=limit)
    return QueueOut(items=[QueueItemOut.of(item) for item in items])


@router.get("/advisor/conversations/{conversation_id}", response_model=AdvisorConversationOut)
def advisor_conversation(
    conversation_id: str, bot: AssistantDep, _advisor: Advisor
) -> AdvisorConversationOut:
    """A conversation with its summary."""
    return _advisor_view(*AdvisorDesk(bot).conversation(conversation_id))


@router.post("/advisor/conversations/{conversation_id}/take", response_model=AdvisorConversationOut)
def take_conversation(
    conversation_id: str, bot: AssistantDep, advisor: Advisor, live: LiveDep
) -> AdvisorConversationOut | JSONResponse:
    """Take a waiting conversation: the bot stops answering, the advisor replies."""
    desk = AdvisorDesk(bot)
    try:
        taken = desk.take(conversation_id, advisor)
    except ConversationConflict as error:
        return _conflict(error)
    announce(live, taken.id, queue=True, taken_by=taken.advisor)
    return _advisor_view(*desk.conversation(conversation_id))


@router.post(
    "/advisor/conversations/{conversation_id}/messages", response_model=TurnOut, status_code=201
)
def advisor_message(
    conversation_id: str, body: AdvisorMessageIn, bot: AssistantDep, advisor: Advisor, live: LiveDep
) -> TurnOut | JSONResponse:
    """Reply to the customer in the same conversation."""
    try:
        turn = AdvisorDesk(bot).reply(conversation_id, advisor, body.text)
    except ConversationConflict as error:
        return _conflict(error)
    announce(live, conversation_id)
    return TurnOut.of(turn)


@router.post(
    "/advisor/conversations/{conversation_id}/close", response_model=AdvisorConversationOut
)
def close_conversation(
    conversation_id: str, bot: AssistantDep, advisor: Advisor, live: LiveDep
) -> AdvisorConversationOut | JSONResponse:
    """End the conversation."""
    desk = AdvisorDesk(bot)
    try:
        closed = desk.close(conversation_id, advisor)
    except ConversationConflict as error:
        return _conflict(error)
    announce(live, closed.id, queue=True)
    return _advisor_view(*desk.conversation(conversation_id))


# -- tutorial images -------------------------------------------------------------------


@router.get(
    "/tutorial-images/{name}",
    response_class=FileResponse,
    responses={
        200: {"content": {t: {} for t in sorted(set(IMAGE_TYPES.values()))}},
        404: {"description": "not one of the tutorial images"},
    },
)
def tutorial_image(name: str) -> FileResponse:
    """An illustration of a tutorial step (the ``url`` of an ``image`` turn's payload)."""
    path = image_file(name)
    if path is None:
        raise NotFoundError(
            f"no tutorial image {name!r}; use the url given in an image turn's payload"
        )
    return FileResponse(path, media_type=IMAGE_TYPES[path.suffix.lower()], headers=_IMAGE_HEADERS)
