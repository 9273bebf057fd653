"""Streaming ingest over ``WS /v1/alarms/ws``: one alarm per frame, acknowledged once
committed, bad frames answered, back-pressure, and the socket documented in OpenAPI."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from allo.config import Settings
from allo.noc import group_commit
from allo.noc.engine import NocEngine
from allo.noc.group_commit import GroupCommitter
from allo.noc.schema import noc_alarms
from allo.noc.sources import parse_alarm_payload
from allo.noc.store import SqlNocStore
from allo.testing.clock import ScriptedClock
from allo.web.app import create_app
from allo.web.routers import noc_ws
from allo.web.routers.noc_ws import AckFrame, AlarmErrorFrame
from tests.noc.helpers import GatedStore, gated_engine

NOW = 1_700_000_000.0


def alarm(i: int, device: str = "r1", kind: str = "LinkDown") -> dict[str, Any]:
    return {"id": f"w{i}", "device": device, "alarm_type": kind, "raised_at": NOW - 100 + i}


def stored_ids(store: SqlNocStore) -> set[str]:
    with store._engine.connect() as c:
        return {row[0] for row in c.execute(select(noc_alarms.c.alarm_id))}


# -- end to end through the app ----------------------------------------------------------


INGEST_TOKEN = "jeton-des-sources-d-alarmes"
OPERATOR_TOKEN = "jeton-operateur-noc-de-test"
SOURCE = {"Authorization": f"Bearer {INGEST_TOKEN}"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """A client holding both secrets: the socket's source and the status reads' operator."""
    settings = settings.model_copy(
        update={"noc_token": SecretStr(OPERATOR_TOKEN), "noc_ingest_token": SecretStr(INGEST_TOKEN)}
    )
    engine = NocEngine(SqlNocStore(settings.resolved_database_url), ScriptedClock(NOW))
    headers = SOURCE | {"X-NOC-Token": OPERATOR_TOKEN}
    with TestClient(create_app(settings, noc_engine=engine), headers=headers) as test_client:
        yield test_client


def read_until_acked(socket: Any, last: int) -> tuple[list[AckFrame], list[AlarmErrorFrame]]:
    """Server frames until an ack covers frame ``last``, each checked against its schema."""
    acks: list[AckFrame] = []
    errors: list[AlarmErrorFrame] = []
    while not acks or acks[-1].through < last:
        data = socket.receive_json()
        if data["type"] == "ack":
            acks.append(AckFrame.model_validate(data))
        else:
            errors.append(AlarmErrorFrame.model_validate(data))
    return acks, errors


def test_alarms_streamed_one_per_frame_are_stored_and_acknowledged(client: TestClient) -> None:
    with client.websocket_connect("/v1/alarms/ws") as socket:
        for i in range(1, 41):
            socket.send_text(json.dumps(alarm(i, device=f"r{i % 3}")))
        acks, errors = read_until_acked(socket, 40)
    assert errors == []
    throughs = [a.through for a in acks]
    assert throughs == sorted(set(throughs)) and throughs[-1] == 40  # cumulative, in order
    assert sum(a.accepted for a in acks) == 40 and sum(a.already_stored for a in acks) == 0
    status = client.get("/v1/noc/status").json()
    assert status["counts"]["alarms"] == 40
    listed = client.get("/v1/incidents", params={"limit": 500}).json()["items"]
    acked_incidents = {i for a in acks for i in a.incidents}
    assert acked_incidents == {item["id"] for item in listed}  # the acks name the updates


def test_bad_frames_get_error_frames_and_nothing_is_dropped(client: TestClient) -> None:
    frames: list[str | bytes] = [
        json.dumps(alarm(1)),
        "{not json",
        json.dumps([alarm(2)]),
        b'{"id": "w3"}',
        json.dumps({"id": "w4", "device": "r1", "raised_at": NOW}),  # no alarm_type
        json.dumps({**alarm(5), "raised_at": "yesterday"}),
        "x" * (noc_ws.MAX_FRAME_CHARS + 1),
        json.dumps(alarm(6)),
    ]
    with client.websocket_connect("/v1/alarms/ws") as socket:
        for item in frames:
            if isinstance(item, bytes):
                socket.send_bytes(item)
            else:
                socket.send_text(item)
        acks, errors = read_until_acked(socket, len(frames))
        socket.send_text(json.dumps(alarm(7)))  # still open after all that
        more, _ = read_until_acked(socket, len(frames) + 1)
    kinds = {e.frame: e.error.type for e in errors}
    assert kinds == {
        2: "InvalidJSON",
        3: "InvalidFrame",
        4: "BinaryFrame",
        5: "MalformedAlarm",
        6: "MalformedAlarm",
        7: "FrameTooLarge",
    }
    assert "alarm_type" in next(e.error.message for e in errors if e.frame == 5)
    assert "raised_at" in next(e.error.message for e in errors if e.frame == 6)
    # the unusable objects are kept as malformed-input alarms, like POST /v1/alarms does
    assert sum(a.accepted for a in acks) == 4 and more[-1].accepted == 1
    status = client.get("/v1/noc/status").json()
    assert status["counts"]["alarms"] == 5
    assert status["input_problems"]["counts"]["malformed"] == 2


def test_a_resent_stream_is_not_counted_twice(client: TestClient) -> None:
    for attempt in range(2):  # the producer lost its acks and resends everything
        with client.websocket_connect("/v1/alarms/ws") as socket:
            for i in range(1, 11):
                socket.send_text(json.dumps(alarm(i)))
            acks, _ = read_until_acked(socket, 10)
        assert sum(a.accepted for a in acks) == (10 if attempt == 0 else 0)
        assert sum(a.already_stored for a in acks) == (0 if attempt == 0 else 10)
    assert client.get("/v1/noc/status").json()["counts"]["alarms"] == 10


def test_a_page_of_another_site_is_refused(client: TestClient) -> None:
    foreign = {"origin": "https://evil.test"}
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/v1/alarms/ws", headers=foreign),
    ):
        pass
    assert refused.value.code == noc_ws.POLICY_VIOLATION
    with client.websocket_connect("/v1/alarms/ws", headers={"origin": "http://testserver"}) as ws:
        ws.send_text(json.dumps(alarm(1)))
        assert read_until_acked(ws, 1)[0][-1].accepted == 1


@pytest.mark.parametrize(
    "credentials",
    [{"Authorization": ""}, {"Authorization": "Bearer faux"}, {"Authorization": "Basic eDp5"}],
    ids=["none", "wrong", "not-bearer"],
)
def test_a_producer_without_the_source_secret_is_refused(
    client: TestClient, credentials: dict[str, str]
) -> None:
    headers = credentials | {"X-NOC-Token": ""}
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/v1/alarms/ws", headers=headers),
    ):
        pass
    assert refused.value.code == noc_ws.POLICY_VIOLATION
    assert client.get("/v1/noc/status").json()["counts"]["alarms"] == 0
    # the source secret alone opens it
    with client.websocket_connect("/v1/alarms/ws", headers={"X-NOC-Token": ""}) as socket:
        socket.send_text(json.dumps(alarm(1)))
        assert read_until_acked(socket, 1)[0][-1].accepted == 1


def test_the_socket_is_documented_in_openapi(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/v1/alarms/ws"]["get"]
    socket = operation["x-websocket"]
    assert socket["path"] == "/v1/alarms/ws" and "101" in operation["responses"]
    server = {v["properties"]["type"]["const"] for v in socket["server_frames"]["oneOf"]}
    assert server == {"ack", "error"}
    assert "$ref" not in json.dumps(socket)  # self-contained schemas
    plain = client.get("/v1/alarms/ws")
    assert plain.status_code == 426 and plain.headers["upgrade"] == "websocket"


# -- the session on a scripted socket and a gated store ------------------------------------


class ScriptedSocket:
    """What :class:`noc_ws._Session` uses of a WebSocket: frames in, frames out."""

    def __init__(self, frames: list[str]) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for text in frames:
            self.incoming.put_nowait({"type": "websocket.receive", "text": text})
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None

    def hang_up(self) -> None:
        self.incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def close(self, code: int, reason: str = "") -> None:
        self.closed = (code, reason)
        self.hang_up()


@pytest.fixture
def gated(tmp_path: Path) -> tuple[NocEngine, GatedStore]:
    return gated_engine(tmp_path, "ws", NOW)


async def until(condition: Any) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")


def test_acks_wait_for_the_commit_and_later_frames_share_the_next_step(
    gated: tuple[NocEngine, GatedStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, store = gated
    monkeypatch.setattr(noc_ws, "MAX_IN_FLIGHT", 3)  # at most 3 frames awaiting commit

    async def scenario() -> ScriptedSocket:
        socket = ScriptedSocket([json.dumps(alarm(i)) for i in range(1, 11)])
        session = noc_ws._Session(socket, GroupCommitter(engine, linger_seconds=0.0))  # type: ignore[arg-type]
        running = asyncio.ensure_future(session.run())
        await asyncio.to_thread(store.entered.wait, 10)  # step 1 writing, not committed
        await asyncio.sleep(0.02)
        assert socket.sent == []  # nothing acknowledged before its commit
        assert socket.incoming.qsize() == 7  # back-pressure: the server stopped reading
        assert stored_ids(store) == set()
        store.gate.set()
        await until(lambda: socket.sent and socket.sent[-1]["through"] == 10)
        socket.hang_up()
        await running
        return socket

    socket = asyncio.run(scenario())
    assert sum(store.writes) == 10 and max(store.writes) <= 3
    assert [frame["type"] for frame in socket.sent] == ["ack"] * len(store.writes)
    assert stored_ids(store) == {f"w{i}" for i in range(1, 11)}


def test_a_failed_step_is_never_acknowledged_and_closes_the_socket(tmp_path: Path) -> None:
    store = GatedStore(f"sqlite:///{tmp_path / 'noc.db'}", fail=True)
    store.gate.set()
    engine = NocEngine(store, ScriptedClock(NOW), stream="ws")
    engine.warm_up()

    async def scenario() -> ScriptedSocket:
        socket = ScriptedSocket([json.dumps(alarm(i)) for i in range(1, 4)])
        await noc_ws._Session(socket, GroupCommitter(engine)).run()  # type: ignore[arg-type]
        return socket

    socket = asyncio.run(scenario())
    assert [frame["type"] for frame in socket.sent] == ["error"]
    assert socket.sent[0]["error"]["type"] == "IngestFailed"
    assert "frames 1-3" in socket.sent[0]["error"]["message"]
    assert socket.closed is not None and socket.closed[0] == noc_ws.INTERNAL_ERROR
    assert stored_ids(store) == set()


# -- the committer's linger ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("linger", "step_held", "lingers"), [(60.0, 0.0, True), (0.005, 0.05, False)]
)
def test_the_committer_lingers_only_after_a_step_quicker_than_the_linger(
    gated: tuple[NocEngine, GatedStore],
    monkeypatch: pytest.MonkeyPatch,
    linger: float,
    step_held: float,
    lingers: bool,
) -> None:
    engine, store = gated
    pauses: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded(delay: float) -> None:  # the linger, without waiting it out
        pauses.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(group_commit.asyncio, "sleep", recorded)
    committer = GroupCommitter(engine, linger_seconds=linger)

    def parse(*ids: str) -> Any:
        return lambda report, first_row: parse_alarm_payload(
            [alarm(int(i)) for i in ids], report, first_row
        )

    async def scenario() -> None:
        together = [asyncio.ensure_future(committer.submit(parse(i))) for i in ("1", "2")]
        await asyncio.to_thread(store.entered.wait, 10)  # step 1 (two requests) is writing
        late = asyncio.ensure_future(committer.submit(parse("3")))
        await asyncio.to_thread(time.sleep, step_held)  # how long step 1 lasts, at least
        store.gate.set()
        await asyncio.gather(*together, late)

    asyncio.run(scenario())
    assert store.writes == [2, 1]
    assert (linger in pauses) is lingers
