"""Streaming alarm ingest over one WebSocket: ``WS /v1/alarms/ws``.

A producer that sends alarms one by one (a mediation device, a log tailer, a broker
bridge) would pay a whole HTTP request per alarm on ``POST /v1/alarms``: a few hundred
alarms per second at most in one Python process. On this socket each text frame is *one
alarm object*, exactly as ``POST /v1/alarms`` takes one, and frames cost a fraction of a
request. Frames are numbered from 1 in the order they arrive on the connection.

What a producer can rely on:

- **acknowledged means committed.** The server answers ``{"type": "ack", "through": N,
  ...}`` only once the transaction holding every alarm of frames ``<= N`` has committed
  (cumulative: an ack covers all earlier frames). An alarm not yet acknowledged when the
  connection or the server dies must be resent; the alarm ``id`` is the idempotency key,
  so a resent alarm is not counted twice (send ids: without one, nothing can be deduped).
- **group commit.** Whatever a connection received while the engine was busy goes into
  its next step as one payload (:meth:`GroupCommitter.enqueue`), with the other
  connections' and the HTTP requests': one pipeline step and one transaction for all.
- **no silent drop.** A frame that is not a JSON object (binary, not JSON, a list, too
  large) gets ``{"type": "error", "frame": N, "error": {...}}`` and stores nothing; an
  object that is not a usable alarm (no device, a bad timestamp) is stored as a
  ``malformed-input`` alarm, as on ``POST /v1/alarms``, and gets an error frame too.
  A failed step (the database is down) closes the socket with 1011: resend what was not
  acknowledged. The socket stays open after bad frames.
- **back-pressure.** At most :data:`MAX_IN_FLIGHT` frames per connection wait for their
  commit; beyond that the server stops reading and TCP slows the producer down.

Authentication: as on the HTTP alarm routes, the handshake carries
``Authorization: Bearer <ALLO_NOC_INGEST_TOKEN>`` (or an operator's ``X-NOC-Token``);
producers are programs, which can set handshake headers. A refused handshake is closed
before it is accepted (the client sees HTTP 403) with the reason. A browser page of
*another* site (an ``Origin`` header that does not name this host) is refused too: it
could otherwise use a visitor's credentials (cross-site WebSocket hijacking).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp

from allo.domain.alarms import Alarm
from allo.errors import InvalidInputError
from allo.noc.engine import IngestResult, NocEngine
from allo.noc.group_commit import GroupCommitter, Parse, Take
from allo.noc.sources.base import InputReport, malformed
from allo.noc.sources.fields import alarm_from_fields
from allo.web.auth import noc_source_refusal
from allo.web.errors import upgrade_required

router = APIRouter(tags=["noc"])

POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
#: longest frame read (characters); an alarm is a few hundred
MAX_FRAME_CHARS = 64 * 1024
#: frames of one connection waiting for their commit before the server stops reading
MAX_IN_FLIGHT = 5000
#: frames of one connection in one payload of a step (bounds a step's duration)
MAX_CHUNK = 1000


def committer_of(app: ASGIApp, engine: NocEngine) -> GroupCommitter:
    """The app's group committer for its engine (made on first use): the HTTP routes and
    the sockets share it, so that all of them meet in the same steps."""
    state = app.state  # type: ignore[attr-defined]
    committer = getattr(state, "noc_committer", None)
    if not isinstance(committer, GroupCommitter) or committer.engine is not engine:
        committer = GroupCommitter(engine)
        state.noc_committer = committer
    return committer


# -- frames, as documented in /openapi.json ----------------------------------------------


class AlarmFrame(BaseModel):
    """Client -> server: one alarm per text frame, as ``POST /v1/alarms`` takes one."""

    model_config = ConfigDict(extra="allow")

    id: str | None = Field(
        default=None,
        description="the idempotency key: a resent id is not counted again; without one "
        "a resent alarm counts twice",
    )
    device: str = Field(description="or device_id, managed_object, node, host, instance, ne")
    alarm_type: str = Field(description="or type, probable_cause, alertname, event_type, name")
    raised_at: float | str = Field(description="epoch seconds or ISO 8601")
    cleared_at: float | str | None = None
    severity: str | None = Field(default=None, description="critical, major, minor, warning")


class AckFrame(BaseModel):
    """Server -> client: every frame up to ``through`` is committed (or was refused by an
    error frame sent before this ack)."""

    type: Literal["ack"] = "ack"
    through: int = Field(description="the last frame number covered (frames count from 1)")
    accepted: int = Field(description="new alarms stored by this ack")
    already_stored: int = Field(description="ids seen before: not counted again")
    cleared: int = Field(description="clear times recorded on stored alarms")
    incidents: list[str] = Field(description="the incidents these alarms created or joined")


class ErrorDetail(BaseModel):
    type: str
    message: str


class AlarmErrorFrame(BaseModel):
    """Server -> client: a frame was refused (nothing stored) or stored as a
    ``malformed-input`` alarm (``MalformedAlarm``). The socket stays open."""

    type: Literal["error"] = "error"
    frame: int | None = Field(default=None, description="the frame concerned")
    error: ErrorDetail


def _one_of(*models: type[BaseModel]) -> dict[str, Any]:
    variants = []
    for model in models:
        schema = model.model_json_schema()
        defs = schema.pop("$defs", {})
        for name, value in schema.get("properties", {}).items():  # inline the one nesting
            ref = value.get("$ref", "")
            if ref.startswith("#/$defs/"):
                schema["properties"][name] = defs[ref.removeprefix("#/$defs/")]
        variants.append(schema)
    return {"oneOf": variants}


_SOCKET_DOC = {
    "x-websocket": {
        "path": "/v1/alarms/ws",
        "frames": "client: one alarm object per text frame; server: JSON objects by 'type'",
        "client_frames": _one_of(AlarmFrame),
        "server_frames": _one_of(AckFrame, AlarmErrorFrame),
        "close_codes": {
            "1008": "policy violation: missing or wrong credentials (Authorization: "
            "Bearer <ingest token> or X-NOC-Token), or a browser page of another origin",
            "1011": "a step failed (database): reconnect and resend unacknowledged alarms",
        },
    }
}


@router.get(
    "/v1/alarms/ws",
    responses={
        101: {"description": "Switching Protocols: the WebSocket handshake succeeded"},
        426: {"description": "Upgrade Required: this path only speaks WebSocket"},
    },
    openapi_extra=_SOCKET_DOC,
    summary="Stream alarms one by one (WebSocket)",
)
def alarm_socket_doc() -> JSONResponse:
    """**WebSocket.** Send one alarm object per text frame (fields as `POST /v1/alarms`;
    give each an `id`). Frames are numbered from 1. The server answers
    `{"type": "ack", "through": N, "accepted", "already_stored", "cleared", "incidents"}`
    once every alarm of frames up to N is committed; resend whatever was not acknowledged
    after a disconnect (ids make it idempotent). A frame that is not a JSON object gets
    `{"type": "error", "frame": N, "error": {"type", "message"}}` and is not stored; an
    unusable alarm is stored as `malformed-input` and gets an error frame too.

    A plain GET answers 426: this operation only documents the socket.
    """
    return upgrade_required()


def _error(frame: int | None, kind: str, message: str) -> str:
    body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
    if frame is not None:
        body["frame"] = frame
    return json.dumps(body, ensure_ascii=False)


def _ack(through: int, result: IngestResult) -> str:
    return json.dumps(
        {
            "type": "ack",
            "through": through,
            "accepted": result.accepted,
            "already_stored": result.already_stored,
            "cleared": result.cleared,
            "incidents": result.touched,
        }
    )


# -- the session --------------------------------------------------------------------------


@dataclass(eq=False)
class _Chunk:
    """Frames of one connection that go into one step, and what parsing them found."""

    frames: list[tuple[int, dict[str, Any], str]] = field(default_factory=list)
    # (frame, why, stand-in id) of unusable alarms; written in the engine's thread before
    # the future completes, read on the loop after it
    problems: list[tuple[int, str, str]] = field(default_factory=list)
    future: asyncio.Future[IngestResult] | None = None

    def parse(self, report: InputReport, first_row: int) -> list[Alarm]:
        """The alarms of the frames (runs in the engine's thread, under its lock)."""
        alarms: list[Alarm] = []
        for offset, (number, data, text) in enumerate(self.frames):
            row = first_row + offset
            try:
                alarms.append(alarm_from_fields(data, row, f"row-{row}"))
            except (InvalidInputError, ValueError, TypeError) as exc:
                alarms.append(malformed(row, text, str(exc), report))
                self.problems.append((number, str(exc), f"row-{row}"))
        return alarms


class _Session:
    """One producer connection: a reader that numbers and queues frames, and a sender
    that answers them in order (error frames, then acks once committed)."""

    def __init__(self, websocket: WebSocket, committer: GroupCommitter) -> None:
        self.websocket = websocket
        self.committer = committer
        self.frames = 0
        self.open: _Chunk | None = None  # queued, not yet taken by a step
        self.in_flight = 0
        self.drained = asyncio.Event()
        self.outbox: asyncio.Queue[_Chunk | str] = asyncio.Queue()
        self.broken = False

    async def run(self) -> None:
        sender = asyncio.create_task(self._send())
        try:
            await self._read()
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    # -- in ---------------------------------------------------------------------------

    async def _read(self) -> None:
        while not self.broken:
            if self.in_flight >= MAX_IN_FLIGHT:  # back-pressure: stop reading
                self.drained.clear()
                await self.drained.wait()
                continue
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            self.frames += 1
            number = self.frames
            text = message.get("text")
            if text is None:
                self._refuse(number, "BinaryFrame", "binary frames are refused: send JSON text")
            elif len(text) > MAX_FRAME_CHARS:
                self._refuse(
                    number,
                    "FrameTooLarge",
                    f"frame of {len(text)} characters, at most {MAX_FRAME_CHARS}: "
                    "one alarm per frame",
                )
            else:
                try:
                    data = json.loads(text)
                except (ValueError, RecursionError):
                    self._refuse(number, "InvalidJSON", "the frame is not JSON: send one object")
                    continue
                if isinstance(data, dict):
                    self._add(number, data, text)
                else:
                    self._refuse(
                        number,
                        "InvalidFrame",
                        "a frame is one alarm as a JSON object (not a list or a value); "
                        "send lists to POST /v1/alarms",
                    )

    def _refuse(self, number: int, kind: str, message: str) -> None:
        # later alarms go into a new chunk, acknowledged after this error frame: an ack
        # through N comes after the answers to every frame before N
        self.open = None
        self.outbox.put_nowait(_error(number, kind, f"frame {number}: {message}"))

    def _add(self, number: int, data: dict[str, Any], text: str) -> None:
        chunk = self.open
        if chunk is None or len(chunk.frames) >= MAX_CHUNK:
            chunk = self.open = _Chunk()
            chunk.future = self.committer.enqueue(self._taker(chunk), "api")
            self.outbox.put_nowait(chunk)
        chunk.frames.append((number, data, text))
        self.in_flight += 1

    def _taker(self, chunk: _Chunk) -> Take:
        def take() -> Parse:  # on the loop, as the step that holds the chunk starts
            if self.open is chunk:
                self.open = None
            return chunk.parse

        return take

    # -- out --------------------------------------------------------------------------

    async def _send(self) -> None:
        try:
            while True:
                item = await self.outbox.get()
                if isinstance(item, str):
                    await self.websocket.send_text(item)
                    continue
                assert item.future is not None
                try:  # shielded: if this client goes, what it sent is still committed
                    result = await asyncio.shield(item.future)
                except Exception as exc:  # nothing of this chunk was committed
                    first, last = item.frames[0][0], item.frames[-1][0]
                    await self.websocket.send_text(
                        _error(
                            None,
                            "IngestFailed",
                            f"frames {first}-{last} were not stored ({type(exc).__name__}): "
                            "reconnect and resend every unacknowledged alarm",
                        )
                    )
                    await self.websocket.close(INTERNAL_ERROR, "ingest failed: resend")
                    self.broken = True
                    return
                for number, why, stand_in in item.problems:
                    await self.websocket.send_text(
                        _error(
                            number,
                            "MalformedAlarm",
                            f"frame {number}: {why}; stored as malformed-input alarm "
                            f"{stand_in}: resend it corrected",
                        )
                    )
                await self.websocket.send_text(_ack(item.frames[-1][0], result))
                self.in_flight -= len(item.frames)
                if self.in_flight < MAX_IN_FLIGHT // 2:
                    self.drained.set()
        except Exception:  # the client went away mid-send: its reader sees the disconnect
            self.broken = True
        finally:
            self.drained.set()


def _foreign_origin(websocket: WebSocket) -> bool:
    """A browser page of another site (its ``Origin`` does not name this host)."""
    origin = websocket.headers.get("origin")
    if not origin:
        return False
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:  # "http://[::1": no page of this host sends that
        return True
    return netloc.lower() != websocket.headers.get("host", "").lower()


@router.websocket("/v1/alarms/ws")
async def alarm_socket(websocket: WebSocket) -> None:
    """Stream alarms one per frame (see the module docstring and ``GET /v1/alarms/ws``)."""
    if _foreign_origin(websocket):
        await websocket.close(POLICY_VIOLATION, "cross-origin alarm sockets are refused")
        return
    refusal = noc_source_refusal(
        websocket.app.state.settings,
        websocket.headers.get("authorization"),
        websocket.headers.get("x-noc-token"),
    )
    if refusal is not None:
        await websocket.close(POLICY_VIOLATION, str(refusal.detail))
        return
    engine: NocEngine = websocket.app.state.noc
    await run_in_threadpool(engine.warm_up)
    await websocket.accept()
    await _Session(websocket, committer_of(websocket.app, engine)).run()
