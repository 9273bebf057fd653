"""The advisor socket: authentication, the live queue, taken and watched conversations."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.websockets import WebSocketDisconnect

from allo.config import PersonalSecret
from tests.web.conversations_ws.conftest import (
    ADVISOR,
    ADVISOR_TOKEN,
    open_one,
    receive,
    receive_until,
    settle,
    turns,
)

HUMAN = "je voudrais parler à un conseiller"


def _advisor(client: TestClient, name: str = "Anne") -> Any:
    ws = client.websocket_connect("/v1/advisor/ws")
    session = ws.__enter__()
    session.send_json({"type": "auth", "advisor_token": ADVISOR_TOKEN, "advisor_name": name})
    ready = receive(session)
    assert ready == {"type": "ready", "advisor": name}
    return ws, session


def _waiting(client: TestClient) -> tuple[str, str]:
    cid, token = open_one(client)
    response = client.post(
        f"/v1/conversations/{cid}/messages",
        headers={"X-Customer-Token": token},
        json={"message_id": "h", "text": HUMAN},
    )
    assert response.json()["status"] == "waiting_advisor"
    return cid, token


def _queue_ids(frame: dict[str, Any]) -> list[str]:
    return [item["conversation_id"] for item in frame["items"]]


def test_refused_without_the_right_token(client: TestClient) -> None:
    for auth in (
        {"type": "auth", "advisor_token": "nope"},
        {"type": "auth", "advisor_token": ""},
        {"type": "auth", "customer_token": ADVISOR_TOKEN},
        {"type": "auth", "advisor_token": ADVISOR_TOKEN, "advisor_name": "x" * 200},
    ):
        with client.websocket_connect("/v1/advisor/ws") as ws:
            ws.send_json(auth)
            with pytest.raises(WebSocketDisconnect) as closed:
                receive(ws)
        assert closed.value.code == 1008
        assert ADVISOR_TOKEN not in closed.value.reason


def test_refused_when_not_configured(client: TestClient) -> None:
    state = client.app.state  # type: ignore[attr-defined]
    state.settings = state.settings.model_copy(update={"advisor_token": None})
    with client.websocket_connect("/v1/advisor/ws") as ws:
        ws.send_json({"type": "auth", "advisor_token": ADVISOR_TOKEN})
        with pytest.raises(WebSocketDisconnect) as closed:
            receive(ws)
    assert closed.value.code == 1008 and "ALLO_ADVISOR_TOKEN" in closed.value.reason


def test_a_personal_secret_signs_in_under_its_holder_s_name(client: TestClient) -> None:
    state = client.app.state  # type: ignore[attr-defined]
    personal = "jeton-personnel-de-chloe-conseil"
    chloe = PersonalSecret(token=SecretStr(personal), name="chloe")
    state.settings = state.settings.model_copy(update={"advisors": [chloe]})
    with client.websocket_connect("/v1/advisor/ws") as ws:
        ws.send_json({"type": "auth", "advisor_token": personal, "advisor_name": "Anne"})
        assert receive(ws) == {"type": "ready", "advisor": "chloe"}  # the typed name is ignored
    state.settings = state.settings.model_copy(update={"advisor_token": None})
    with client.websocket_connect("/v1/advisor/ws") as ws:  # the shared secret is gone
        ws.send_json({"type": "auth", "advisor_token": ADVISOR_TOKEN})
        with pytest.raises(WebSocketDisconnect) as closed:
            receive(ws)
    assert closed.value.code == 1008 and personal not in closed.value.reason


def test_live_queue_and_taken_conversation(client: TestClient, customer_socket: Any) -> None:
    ws, advisor = _advisor(client)
    try:
        assert receive(advisor) == {"type": "queue", "items": []}
        cid, token = _waiting(client)
        queued = receive_until(advisor, "queue")[-1]
        assert _queue_ids(queued) == [cid]
        assert queued["items"][0]["summary"]["wants"]

        # Taken over REST (from the page): the queue says so and the socket follows it.
        assert client.post(f"/v1/advisor/conversations/{cid}/take", headers=ADVISOR).is_success
        after_take = receive_until(advisor, "queue")
        assert queued["items"][0]["status"] == "waiting_advisor"
        assert after_take[-1]["items"][0]["advisor"] == "Anne"

        customer = customer_socket(cid, token, after=10_000)
        customer.send_json({"type": "message", "message_id": "q", "text": "Vous êtes là ?"})
        receive_until(customer, "ack", message_id="q")
        live = turns(receive_until(advisor, "turn"))
        assert live[-1]["role"] == "customer" and live[-1]["text"] == "Vous êtes là ?"

        # Typing shows dots to the customer; only in a conversation this advisor took.
        advisor.send_json({"type": "typing", "conversation_id": cid})
        assert receive_until(customer, "typing")[-1] == {
            "type": "typing",
            "conversation_id": cid,
            "role": "advisor",
        }
        other, _ = _waiting(client)
        advisor.send_json({"type": "typing", "conversation_id": other})
        assert receive_until(advisor, "error")[-1]["error"]["type"] == "NotYourConversation"
    finally:
        ws.__exit__(None, None, None)


def test_watch_replays_then_follows_any_conversation(client: TestClient) -> None:
    ws, advisor = _advisor(client, "Bruno")
    try:
        receive(advisor)  # the queue
        cid, token = _waiting(client)
        history = client.get(f"/v1/conversations/{cid}", headers={"X-Customer-Token": token})
        stored = [t["seq"] for t in history.json()["turns"]]
        advisor.send_json({"type": "watch", "conversation_id": cid, "after": 1})
        replay = [f for f in settle(advisor) if f.get("conversation_id") == cid]
        assert [t["seq"] for t in turns(replay)] == stored[1:]
        assert [f["status"] for f in replay if f["type"] == "status"] == ["waiting_advisor"]

        # Another advisor takes it: this socket, watching, sees the new turn and status.
        client.post(f"/v1/advisor/conversations/{cid}/take", headers=ADVISOR)
        status = receive_until(advisor, "status", conversation_id=cid)[-1]
        assert status["status"] == "with_advisor" and status["advisor"] == "Anne"

        advisor.send_json({"type": "unwatch", "conversation_id": cid})
        client.post(
            f"/v1/advisor/conversations/{cid}/messages", headers=ADVISOR, json={"text": "Bonjour"}
        )
        assert turns(settle(advisor)) == []

        advisor.send_json({"type": "watch", "conversation_id": "c_nobody_has_this_id"})
        assert receive_until(advisor, "error")[-1]["error"]["type"] == "NotFoundError"
        advisor.send_json({"type": "watch"})
        assert receive_until(advisor, "error")[-1]["error"]["type"] == "InvalidRequest"
        advisor.send_text("{oops")
        assert receive_until(advisor, "error")[-1]["error"]["type"] == "InvalidJSON"
    finally:
        ws.__exit__(None, None, None)


def test_reconnecting_advisor_follows_the_conversations_they_took(client: TestClient) -> None:
    cid, token = _waiting(client)
    client.post(f"/v1/advisor/conversations/{cid}/take", headers=ADVISOR)
    ws, advisor = _advisor(client, "Anne")
    try:
        settle(advisor)
        client.post(
            f"/v1/conversations/{cid}/messages",
            headers={"X-Customer-Token": token},
            json={"message_id": "x", "text": "Toujours là"},
        )
        live = turns(receive_until(advisor, "turn", conversation_id=cid))
        assert [t["text"] for t in live] == ["Toujours là"]
    finally:
        ws.__exit__(None, None, None)
