"""The customer socket: live turns in order, the same rules as REST, bad frames, privacy."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from allo.assistant.handoff import AdvisorDesk
from allo.web.live import LiveHub
from allo.web.routers import conversations_ws
from tests.web.conversations_ws.conftest import (
    ADVISOR,
    open_one,
    receive,
    receive_until,
    settle,
    turns,
)

INSTALL = "Je veux installer ma nouvelle Livebox 6"


def test_live_turns_from_bot_rest_and_advisor_in_order(
    client: TestClient, customer_socket: Any
) -> None:
    cid, token = open_one(client)
    ws = customer_socket(cid, token)
    ws.send_json({"type": "message", "message_id": "m1", "seq": 1, "text": INSTALL})
    frames = receive_until(ws, "ack", message_id="m1")
    first = turns(frames)
    assert first[0]["role"] == "customer" and first[0]["text"] == INSTALL
    assert {t["payload"].get("kind") for t in first[1:]} >= {"text", "buttons"}
    assert frames[-1]["action"] == "tutorial_start" and frames[-1]["replayed"] is False

    # A message sent over REST (another tab), then the advisor, over REST too.
    client.post(
        f"/v1/conversations/{cid}/messages",
        headers={"X-Customer-Token": token},
        json={"message_id": "m2", "seq": 2, "text": "je voudrais parler à un conseiller"},
    )
    handoff = receive_until(ws, "status", status="waiting_advisor")
    assert client.post(f"/v1/advisor/conversations/{cid}/take", headers=ADVISOR).status_code == 200
    taken = receive_until(ws, "status", status="with_advisor")
    said = client.post(
        f"/v1/advisor/conversations/{cid}/messages", headers=ADVISOR, json={"text": "Bonjour !"}
    )
    assert said.status_code == 201
    reply = receive_until(ws, "turn")
    assert reply[-1]["turn"]["role"] == "advisor" and reply[-1]["turn"]["text"] == "Bonjour !"
    client.post(f"/v1/advisor/conversations/{cid}/close", headers=ADVISOR)
    closed = receive_until(ws, "status", status="closed")

    seqs = [t["seq"] for t in turns(frames + handoff + taken + reply + closed + settle(ws))]
    stored = client.get(f"/v1/conversations/{cid}", headers={"X-Customer-Token": token})
    assert seqs == [t["seq"] for t in stored.json()["turns"]]  # all, in order, each once


def test_same_idempotency_order_and_limits_as_rest(
    client: TestClient, customer_socket: Any
) -> None:
    cid, token = open_one(client)
    ws = customer_socket(cid, token)
    ws.send_json({"type": "message", "message_id": "m1", "seq": 1, "text": INSTALL})
    receive_until(ws, "ack", message_id="m1")
    ws.send_json({"type": "message", "message_id": "m1", "seq": 1, "text": INSTALL})
    again = receive_until(ws, "ack", message_id="m1")
    assert again[-1]["replayed"] is True and turns(again) == []  # not processed twice

    refused = {
        "seq": ({"message_id": "m2", "seq": 7, "text": "bonjour"}, "ConversationConflict"),
        "reused": ({"message_id": "m1", "text": "autre chose"}, "ConversationConflict"),
        "long": ({"message_id": "m3", "text": "x" * 2001}, "InvalidInputError"),
        "empty": ({"message_id": "m4", "text": "   "}, "InvalidInputError"),
        "both": ({"message_id": "m5", "text": "a", "payload": "b"}, "InvalidInputError"),
        "binary": ({"message_id": "m6", "text": "a\x00b"}, "InvalidInputError"),
        "no id": ({"text": "bonjour"}, "InvalidRequest"),
    }
    for name, (body, kind) in refused.items():
        ws.send_json({"type": "message", **body})
        error = receive(ws)
        assert error["type"] == "error", name
        assert error["error"]["type"] == kind, (name, error)
        assert error["error"]["message"]
        assert error.get("message_id") == body.get("message_id"), name
    # REST agrees on the first refusal's status and the conversation is unchanged.
    rest = client.post(
        f"/v1/conversations/{cid}/messages",
        headers={"X-Customer-Token": token},
        json={"message_id": "m2", "seq": 7, "text": "bonjour"},
    )
    assert rest.status_code == 409
    history = client.get(f"/v1/conversations/{cid}", headers={"X-Customer-Token": token}).json()
    assert [t["message_id"] for t in history["turns"] if t["role"] == "customer"] == ["m1"]


def test_bad_frames_get_errors_and_the_socket_stays_open(
    client: TestClient, customer_socket: Any
) -> None:
    cid, token = open_one(client)
    ws = customer_socket(cid, token)
    limit = conversations_ws.frame_limit(client.app.state.settings.assistant.max_message_chars)  # type: ignore[attr-defined]
    bad = [
        ("{not json", "InvalidJSON"),
        ("[1, 2]", "InvalidFrame"),
        ('{"text": "no type"}', "InvalidFrame"),
        ('{"type": "subscribe"}', "UnknownFrameType"),
        ("[" * 5000 + "]" * 5000, "InvalidJSON"),
        ('{"type": "message", "text": "' + "x" * limit + '"}', "FrameTooLarge"),
        ('{"type": "auth", "customer_token": "x"}', "InvalidFrame"),
    ]
    for text, kind in bad:
        ws.send_text(text)
        error = receive(ws)
        assert error == {
            "type": "error",
            "error": {"type": kind, "message": error["error"]["message"]},
        }
    ws.send_bytes(b"\xff\xfe\x00")
    assert receive(ws)["error"]["type"] == "BinaryFrame"
    ws.send_json({"type": "message", "message_id": "ok", "text": "bonjour"})
    assert receive_until(ws, "ack", message_id="ok")[-1]["replayed"] is False


def _close_reason(client: TestClient, path: str, first: Any) -> tuple[int, str]:
    with client.websocket_connect(path) as ws:
        if isinstance(first, str):
            ws.send_text(first)
        else:
            ws.send_json(first)
        with pytest.raises(WebSocketDisconnect) as closed:
            receive(ws)
    return closed.value.code, closed.value.reason


def test_wrong_token_and_unknown_id_close_alike(client: TestClient) -> None:
    cid, token = open_one(client)
    _, other_token = open_one(client)
    auth = {"type": "auth", "customer_token": other_token}
    wrong = _close_reason(client, f"/v1/conversations/{cid}/ws", auth)
    unknown = _close_reason(client, "/v1/conversations/c_nobody_has_this_id/ws", auth)
    malformed = _close_reason(client, "/v1/conversations/x%20y/ws", auth)
    assert wrong == unknown == malformed  # nothing tells whether the id exists
    assert wrong[0] == 1008 and "POST /v1/conversations" in wrong[1]
    assert token not in wrong[1] and other_token not in wrong[1]
    code, reason = _close_reason(client, f"/v1/conversations/{cid}/ws", {"type": "message"})
    assert code == 1008 and '"customer_token"' in reason
    code, reason = _close_reason(client, f"/v1/conversations/{cid}/ws", "not json")
    assert code == 1008


def test_auth_must_come_quickly(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conversations_ws, "AUTH_SECONDS", 0.2)
    cid, _ = open_one(client)
    with (
        client.websocket_connect(f"/v1/conversations/{cid}/ws") as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        receive(ws)
    assert closed.value.code == 1008 and "authenticate within" in closed.value.reason


def test_one_customer_never_sees_another(client: TestClient, customer_socket: Any) -> None:
    mine, my_token = open_one(client)
    theirs, their_token = open_one(client)
    spy = customer_socket(theirs, their_token)
    me = customer_socket(mine, my_token)
    me.send_json({"type": "message", "message_id": "secret", "text": "mon numéro 0612345678"})
    receive_until(me, "ack", message_id="secret")
    seen_by_spy = settle(spy)
    assert seen_by_spy == []
    assert "0612345678" not in str(seen_by_spy)


def test_resume_replays_only_missed_turns(client: TestClient, customer_socket: Any) -> None:
    cid, token = open_one(client)
    headers = {"X-Customer-Token": token}
    client.post(
        f"/v1/conversations/{cid}/messages",
        headers=headers,
        json={"message_id": "a", "text": INSTALL},
    )
    stored = client.get(f"/v1/conversations/{cid}", headers=headers).json()["turns"]
    assert len(stored) >= 3
    ws = customer_socket(cid, token, after=2)
    replay = turns(settle(ws))
    assert [t["seq"] for t in replay] == [t["seq"] for t in stored[2:]]
    # Resuming past the end is the end: new turns still arrive.
    later = customer_socket(cid, token, after=10_000)
    assert settle(later) == []
    later.send_json({"type": "message", "message_id": "b", "payload": "complet"})
    new = turns(receive_until(later, "ack", message_id="b"))
    assert new[0]["seq"] == len(stored) + 1
    # the other tab gets them too, pushed when they are stored: a ping's pong may overtake
    # them, so wait for the turns themselves (at most 10 s each)
    other_tab: list[int] = []
    while len(other_tab) < len(new):
        frame = receive(ws)
        if frame["type"] == "turn":
            other_tab.append(frame["turn"]["seq"])
    assert other_tab == [t["seq"] for t in new]
    assert turns(settle(ws)) == []  # and nothing more


def test_image_turns_link_to_the_served_image(client: TestClient, customer_socket: Any) -> None:
    cid, token = open_one(client)
    ws = customer_socket(cid, token)
    ws.send_json({"type": "message", "message_id": "m", "text": INSTALL})
    images = [t for t in turns(receive_until(ws, "ack")) if t["payload"].get("kind") == "image"]
    assert images, "the Livebox tutorial starts with the label picture"
    url = images[0]["payload"]["url"]
    assert url == "/v1/tutorial-images/livebox-6-etiquette.svg"
    image = client.get(url)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/svg+xml"
    assert image.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in image.headers["content-security-policy"]
    assert image.content.startswith(b"<svg")


def test_a_change_made_by_another_worker_reaches_the_socket(
    client: TestClient, customer_socket: Any
) -> None:
    # Another worker process writes to the same store; this process's hub hears nothing.
    client.app.state.live = LiveHub(quiet=0.2)  # type: ignore[attr-defined]
    cid, token = open_one(client)
    ws = customer_socket(cid, token)
    ws.send_json({"type": "message", "message_id": "m1", "seq": 1, "text": "un conseiller svp"})
    receive_until(ws, "ack", message_id="m1")
    bot = client.app.state.assistant  # type: ignore[attr-defined]
    desk = AdvisorDesk(bot)
    desk.take(cid, "Anne")  # straight to the store, no announcement
    desk.reply(cid, "Anne", "Bonjour, ici Anne.")
    shown = []
    while not shown or shown[-1]["role"] != "advisor":
        shown.append(receive_until(ws, "turn")[-1]["turn"])
    assert shown[-1]["text"] == "Bonjour, ici Anne."
