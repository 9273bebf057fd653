"""An app with an assistant on the fake embedder, a TestClient, and socket helpers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from allo.assistant.session import Assistant
from allo.config import Settings
from allo.knowledge.service import KnowledgeBase
from allo.web.app import create_app
from tests.assistant.dialogue.conftest import (  # noqa: F401 - fixtures used here
    assistant,
    clock,
    db_url,
    policy,
    understander,
)

ADVISOR_TOKEN = "jeton-conseiller-de-test"
ADVISOR = {"X-Advisor-Token": ADVISOR_TOKEN, "X-Advisor-Name": "Anne"}


@pytest.fixture
def client(settings: Settings, demo_kb: KnowledgeBase, assistant: Assistant) -> TestClient:  # noqa: F811
    settings = settings.model_copy(update={"advisor_token": SecretStr(ADVISOR_TOKEN)})
    app = create_app(settings, knowledge=demo_kb)
    app.state.assistant = assistant
    return TestClient(app)  # no lifespan: the shared demo KB stays open


def open_one(client: TestClient) -> tuple[str, str]:
    """A new conversation: its id and customer token."""
    body = client.post("/v1/conversations").json()
    return body["conversation_id"], body["customer_token"]


def receive(ws: WebSocketTestSession, seconds: float = 10.0) -> dict[str, Any]:
    """The next frame as JSON; fails after ``seconds`` instead of hanging the test run.

    A close frame raises ``WebSocketDisconnect`` with its code and reason.
    """

    async def get() -> Any:
        with anyio.fail_after(seconds):
            return await ws._send_rx.receive()

    message = ws.portal.call(get)
    if message["type"] == "websocket.close":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason", ""))
    frame: dict[str, Any] = json.loads(message["text"])
    return frame


def receive_until(ws: WebSocketTestSession, kind: str, **match: Any) -> list[dict[str, Any]]:
    """Frames up to and including the first of type ``kind`` whose fields match."""
    frames = []
    while True:
        frame = receive(ws)
        frames.append(frame)
        if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
            return frames


def settle(ws: WebSocketTestSession) -> list[dict[str, Any]]:
    """Every frame before the answer to a ping (what the socket had to say so far)."""
    ws.send_json({"type": "ping"})
    return receive_until(ws, "pong")[:-1]


def turns(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f["turn"] for f in frames if f["type"] == "turn"]


@pytest.fixture
def customer_socket(client: TestClient) -> Iterator[Any]:
    """Open a socket on a conversation and authenticate it; yields a function."""
    with_sockets: list[WebSocketTestSession] = []

    def connect(conversation_id: str, token: str, after: int = 0) -> WebSocketTestSession:
        ws = client.websocket_connect(f"/v1/conversations/{conversation_id}/ws").__enter__()
        with_sockets.append(ws)
        ws.send_json({"type": "auth", "customer_token": token, "after": after})
        ready = receive(ws)
        assert ready["type"] == "ready", ready
        return ws

    yield connect
    for ws in with_sockets:
        ws.__exit__(None, None, None)
