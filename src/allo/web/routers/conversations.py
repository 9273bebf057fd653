"""Customer conversations and the advisor queue over REST.

Customers: ``POST /v1/conversations`` (id + customer token), then messages and reads with
the ``X-Customer-Token`` header. Advisors: ``/v1/advisor/...`` with the ``X-Advisor-Token``
header, checked against the ``ALLO_ADVISOR_TOKEN`` setting (503 while unset).
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from allo.assistant.handoff import AdvisorDesk, QueueItem
from allo.assistant.policy import CustomerMessage
from allo.assistant.session import Assistant, build_assistant
from allo.assistant.store import Conversation, ConversationConflict, Turn
from allo.web.auth import advisor_name
from allo.web.errors import error_body

router = APIRouter(prefix="/v1", tags=["conversations"])
_build_lock = threading.Lock()


def assistant(request: Request) -> Assistant:
    """The app's assistant (``app.state.assistant``), built on first use if not given."""
    state = request.app.state
    found: Assistant | None = getattr(state, "assistant", None)
    if found is None:
        with _build_lock:
            found = getattr(state, "assistant", None)
            if found is None:
                found = build_assistant(state.knowledge)
                state.assistant = found
    return found


def customer_token(
    x_customer_token: Annotated[str | None, Header()] = None,
) -> str:
    if not x_customer_token:
        raise HTTPException(
            401, "missing X-Customer-Token header: send the token POST /v1/conversations gave"
        )
    return x_customer_token


AssistantDep = Annotated[Assistant, Depends(assistant)]
CustomerToken = Annotated[str, Depends(customer_token)]
Advisor = Annotated[str, Depends(advisor_name)]


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
        return cls(
            seq=turn.seq,
            role=turn.role,
            text=turn.text,
            created_at=turn.created_at,
            payload=turn.payload,
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
def open_conversation(bot: AssistantDep) -> OpenedOut:
    """Open a conversation; keep the ``customer_token``: every later call needs it."""
    opened = bot.open()
    return OpenedOut(conversation_id=opened.conversation_id, customer_token=opened.customer_token)


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=ReplyOut,
    responses={409: {"description": "replayed id reused, out of order, closed or raced"}},
)
def post_message(
    conversation_id: str, body: MessageIn, bot: AssistantDep, token: CustomerToken
) -> ReplyOut | JSONResponse:
    """Send a customer message (text or button payload); returns the turns it produced."""
    if (body.text is None) == (body.payload is None):
        return JSONResponse(
            error_body("InvalidInputError", "send either 'text' or 'payload', not both or none"),
            status_code=422,
        )
    message = CustomerMessage(text=body.text, payload=body.payload)
    try:
        reply = bot.post(conversation_id, token, body.message_id, message, body.seq)
    except ConversationConflict as error:
        return _conflict(error)
    return ReplyOut(
        conversation_id=reply.conversation_id,
        status=reply.status,
        replayed=reply.replayed,
        action=reply.action,
        turns=[TurnOut.of(t) for t in reply.turns],
    )


@router.get("/conversations/{conversation_id}", response_model=ConversationOut)
def get_conversation(
    conversation_id: str,
    bot: AssistantDep,
    token: CustomerToken,
    after: Annotated[int, Query(ge=0, description="only turns after this seq")] = 0,
) -> ConversationOut:
    """The conversation's turns (bot, advisor and customer), for its customer only."""
    conversation, turns = bot.history(conversation_id, token)
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
    conversation_id: str, bot: AssistantDep, advisor: Advisor
) -> AdvisorConversationOut | JSONResponse:
    """Take a waiting conversation: the bot stops answering, the advisor replies."""
    desk = AdvisorDesk(bot)
    try:
        desk.take(conversation_id, advisor)
    except ConversationConflict as error:
        return _conflict(error)
    return _advisor_view(*desk.conversation(conversation_id))


@router.post(
    "/advisor/conversations/{conversation_id}/messages", response_model=TurnOut, status_code=201
)
def advisor_message(
    conversation_id: str, body: AdvisorMessageIn, bot: AssistantDep, advisor: Advisor
) -> TurnOut | JSONResponse:
    """Reply to the customer in the same conversation."""
    try:
        return TurnOut.of(AdvisorDesk(bot).reply(conversation_id, advisor, body.text))
    except ConversationConflict as error:
        return _conflict(error)


@router.post(
    "/advisor/conversations/{conversation_id}/close", response_model=AdvisorConversationOut
)
def close_conversation(
    conversation_id: str, bot: AssistantDep, advisor: Advisor
) -> AdvisorConversationOut | JSONResponse:
    """End the conversation."""
    desk = AdvisorDesk(bot)
    try:
        desk.close(conversation_id, advisor)
    except ConversationConflict as error:
        return _conflict(error)
    return _advisor_view(*desk.conversation(conversation_id))
