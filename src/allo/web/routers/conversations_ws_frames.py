"""The frames of the chat WebSockets, as Pydantic models, and the GETs that document them.

One JSON object per text frame, told apart by its ``type``. The models build the frames
the server sends and document both directions in ``/openapi.json``: OpenAPI 3.1 has no
WebSocket operations, so each socket path also answers a plain ``GET`` with
``426 Upgrade Required`` and that operation carries the description, a ``101`` response
and an ``x-websocket`` extension listing the frame schemas (the same convention as the
"GET + 101 Switching Protocols" operations that OpenAPI tooling renders today).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from allo.web.errors import upgrade_required
from allo.web.routers.conversations import QueueItemOut, TurnOut

# -- client -> server ---------------------------------------------------------------------


class CustomerAuthFrame(BaseModel):
    """First frame of a customer socket."""

    type: Literal["auth"]
    customer_token: str = Field(description="the token POST /v1/conversations returned")
    after: int = Field(default=0, ge=0, description="resume: replay the turns after this seq")


class MessageFrame(BaseModel):
    """A customer message, exactly as ``POST /v1/conversations/{id}/messages`` takes it."""

    type: Literal["message"]
    message_id: str
    text: str | None = None
    payload: str | None = None
    seq: int | None = None


class AdvisorAuthFrame(BaseModel):
    """First frame of an advisor socket."""

    type: Literal["auth"]
    advisor_token: str = Field(description="the ALLO_ADVISOR_TOKEN secret")
    advisor_name: str | None = Field(default=None, description='as X-Advisor-Name; "conseiller"')


class WatchFrame(BaseModel):
    """Follow one conversation's turns and status (any conversation an advisor may read)."""

    type: Literal["watch", "unwatch"]
    conversation_id: str
    after: int = Field(default=0, ge=0, description="replay the turns after this seq")


class TypingFrame(BaseModel):
    """An advisor is typing in a conversation they took: the customer sees dots."""

    type: Literal["typing"]
    conversation_id: str


class PingFrame(BaseModel):
    """Answered by a ``pong``; keeps proxies from closing an idle socket."""

    type: Literal["ping"]


# -- server -> client ---------------------------------------------------------------------


class ReadyFrame(BaseModel):
    """Authenticated: the replay follows (customer sockets), then live frames."""

    type: Literal["ready"] = "ready"
    conversation_id: str | None = None
    status: str | None = None
    last_seq: int | None = None
    advisor: str | None = None


class TurnFrame(BaseModel):
    """One new turn; per conversation, in seq order and never twice on one socket."""

    type: Literal["turn"] = "turn"
    conversation_id: str
    turn: TurnOut


class StatusFrame(BaseModel):
    """The conversation's status changed (bot, waiting_advisor, with_advisor, closed)."""

    type: Literal["status"] = "status"
    conversation_id: str
    status: str
    advisor: str | None = None


class TypingOutFrame(BaseModel):
    """Someone is writing (the advisor, for customers); lasts a few seconds."""

    type: Literal["typing"] = "typing"
    conversation_id: str
    role: Literal["advisor"] = "advisor"


class AckFrame(BaseModel):
    """A customer message was handled; its turns were sent just before."""

    type: Literal["ack"] = "ack"
    message_id: str
    status: str
    replayed: bool
    action: str | None


class QueueFrame(BaseModel):
    """The advisor queue, waiting and taken conversations (sent when it changes)."""

    type: Literal["queue"] = "queue"
    items: list[QueueItemOut]


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorFrame(BaseModel):
    """A frame was refused; the socket stays open."""

    type: Literal["error"] = "error"
    error: ErrorDetail
    message_id: str | None = Field(default=None, description="set when a message was refused")


class PongFrame(BaseModel):
    type: Literal["pong"] = "pong"


def frame(model: BaseModel) -> str:
    """The JSON text of a frame, without the optional fields left empty."""
    return model.model_dump_json(exclude_none=True)


def error_frame(kind: str, message: str, message_id: str | None = None) -> str:
    return frame(ErrorFrame(error=ErrorDetail(type=kind, message=message), message_id=message_id))


# -- OpenAPI ------------------------------------------------------------------------------


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """The schema with its local ``$ref``s replaced by the definitions they name."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


def _one_of(*models: type[BaseModel]) -> dict[str, Any]:
    variants = []
    for model in models:
        full = model.model_json_schema()
        variants.append(_inline(full, full.get("$defs", {})))
    return {"oneOf": variants}


def websocket_doc(
    path: str, client: tuple[type[BaseModel], ...], server: tuple[type[BaseModel], ...]
) -> dict[str, Any]:
    """The ``openapi_extra`` of a socket's documenting GET operation."""
    return {
        "x-websocket": {
            "path": path,
            "frames": "one JSON object per text frame; binary frames are refused",
            "client_frames": _one_of(*client),
            "server_frames": _one_of(*server),
            "close_codes": {
                "1008": "policy violation: authentication failed or timed out (reason given)",
                "1011": "internal error: reconnect and resume with 'after'",
            },
        }
    }


UPGRADE_RESPONSES: dict[int | str, dict[str, Any]] = {
    101: {"description": "Switching Protocols: the WebSocket handshake succeeded"},
    426: {"description": "Upgrade Required: this path only speaks WebSocket"},
}


#: included by the sockets' router, under its /v1 prefix
docs_router = APIRouter(tags=["conversations"])


# -- documentation -----------------------------------------------------------------------


_CUSTOMER_SERVER_FRAMES = (
    ReadyFrame,
    TurnFrame,
    StatusFrame,
    TypingOutFrame,
    AckFrame,
    ErrorFrame,
    PongFrame,
)


@docs_router.get(
    "/conversations/{conversation_id}/ws",
    responses=UPGRADE_RESPONSES,
    openapi_extra=websocket_doc(
        "/v1/conversations/{conversation_id}/ws",
        (CustomerAuthFrame, MessageFrame, PingFrame),
        _CUSTOMER_SERVER_FRAMES,
    ),
    summary="Customer conversation (WebSocket)",
)
def customer_socket_doc(conversation_id: str) -> JSONResponse:
    """**WebSocket.** Open it with the conversation's id, then send
    `{"type": "auth", "customer_token": "...", "after": 0}` within 10 s. The server answers
    `ready`, replays the turns after `after` (resume), then pushes every new turn (bot,
    advisor, and this customer's from other tabs or REST) as `turn` frames in seq order,
    `status` on status changes and `typing` while the advisor writes. Send
    `{"type": "message", "message_id", "text" | "payload", "seq"}` exactly as in
    `POST /v1/conversations/{id}/messages`: its turns come back, then an `ack`; a refused
    message gets an `error` frame, and so do malformed, binary, oversized or unknown
    frames, without closing. A wrong token or unknown id closes with 1008.

    A plain GET answers 426: this operation only documents the socket.
    """
    return upgrade_required()


@docs_router.get(
    "/advisor/ws",
    responses=UPGRADE_RESPONSES,
    openapi_extra=websocket_doc(
        "/v1/advisor/ws",
        (AdvisorAuthFrame, WatchFrame, TypingFrame, PingFrame),
        (ReadyFrame, QueueFrame, TurnFrame, StatusFrame, ErrorFrame, PongFrame),
    ),
    summary="Advisor desk (WebSocket)",
)
def advisor_socket_doc() -> JSONResponse:
    """**WebSocket.** Send `{"type": "auth", "advisor_token": "...", "advisor_name":
    "..."}` within 10 s (a wrong token closes with 1008). The server answers `ready`,
    then sends the `queue` (waiting and taken conversations with their summaries)
    whenever it changes, and the new `turn` and `status` frames of the conversations
    this advisor took. `{"type": "watch", "conversation_id", "after"}` follows any other
    conversation (replaying the turns after `after`), `unwatch` stops; `typing` shows the
    customer that the advisor is writing. Replies and takes go through the REST API.

    A plain GET answers 426: this operation only documents the socket.
    """
    return upgrade_required()
