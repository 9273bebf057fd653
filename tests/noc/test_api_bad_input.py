"""Hostile and broken input on the NOC API: a clear 4xx or a stored stand-in, never a 500,
never an alarm lost, and never a state that the store does not hold."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from allo.config import Settings
from allo.errors import InvalidInputError
from allo.noc.engine import NocEngine
from allo.noc.silences import check_regex
from allo.noc.sources import parse_alarm_payload
from allo.noc.sources.base import MALFORMED_TYPE, InputReport
from allo.noc.store import IncidentQuery, SqlNocStore
from allo.testing.clock import ScriptedClock
from allo.web.body_limit import MAX_BODY_BYTES
from allo.web.routers import noc_ws
from allo.web.routers.noc import _event_id, incident_stream
from tests.noc.helpers import GatedStore
from tests.noc.test_api import NOW, OPERATOR, _app

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = _app(settings, ScriptedClock(NOW))
    with TestClient(app, headers=OPERATOR, raise_server_exceptions=False) as test_client:
        yield test_client


def alarm(alarm_id: str | None, device: str = "r1", at: Any = NOW, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"device": device, "alarm_type": "LinkDown", "raised_at": at, **extra}
    if alarm_id is not None:
        body["id"] = alarm_id
    return body


def stored(client: TestClient) -> int:
    return int(client.get("/v1/noc/status").json()["counts"]["alarms"])


def on_file(tmp_path: Path) -> NocEngine:
    """A live engine on its own SQLite file (not started)."""
    return NocEngine(
        SqlNocStore(f"sqlite:///{tmp_path / 'noc.db'}"), ScriptedClock(NOW), stream="live"
    )


class Reader:
    """The request of an SSE reader, as the stream sees it: connected or gone."""

    def __init__(self, connected: bool = True) -> None:
        self.connected = connected

    async def is_disconnected(self) -> bool:
        return not self.connected


def restarted(settings: Settings) -> NocEngine:
    engine = NocEngine(
        SqlNocStore(settings.resolved_database_url), ScriptedClock(NOW), stream="live"
    )
    engine.warm_up()
    return engine


def heads(engine: NocEngine) -> dict[str, str]:
    everything = IncidentQuery((), None, None, None, None, None, None, None, None)
    _, items = engine.store.list_incidents(everything, 0, 100)
    return {item["id"]: item["head"]["id"] for item in items}


# -- text a database cannot hold ------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"id":"s1","device":"r1","alarm_type":"LinkDown","raised_at":1700000000,"note":"\\ud800"}',
        b'{"id":"s1","device":"r\\udfff","alarm_type":"LinkDown","raised_at":1700000000}',
        b'{"id":"s1","device":"r\xed\xa0\x80","alarm_type":"LinkDown","raised_at":1700000000}',
    ],
    ids=["escaped-in-attribute", "escaped-in-device", "raw-bytes-in-device"],
)
def test_a_lone_surrogate_becomes_a_stored_stand_in(
    client: TestClient, settings: Settings, body: bytes
) -> None:
    answer = client.post("/v1/alarms", content=body, headers=JSON)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1
    assert answer.json()["input_problems"]["counts"] == {"malformed": 1}
    assert "not valid Unicode" in answer.json()["input_problems"]["examples"]["malformed"][0]
    follow = client.post("/v1/alarms", json=alarm("ok1", at=NOW + 1)).json()
    assert follow["accepted"] == 1
    assert stored(client) == 2
    incident = client.get(f"/v1/incidents/{follow['incidents'][0]}").json()
    assert [m["id"] for m in incident["members"]] == ["ok1"]
    stand_in = client.get(f"/v1/incidents/{answer.json()['incidents'][0]}").json()["members"][0]
    assert stand_in["alarm_type"] == MALFORMED_TYPE
    assert "\\ud" in stand_in["attributes"]["raw"] or "\\xed" in stand_in["attributes"]["raw"]
    live = heads(client.app.state.noc)  # type: ignore[attr-defined]
    assert heads(restarted(settings)) == live  # nothing shown that the store does not hold


def test_a_bad_alarm_does_not_fail_the_others_of_its_step(tmp_path: Path) -> None:
    engine = on_file(tmp_path)
    good = [alarm(f"g{i}", device=f"r{i}") for i in range(3)]
    bad = [alarm("bad", device="r\ud800")]

    def payload(items: list[dict[str, Any]]) -> Any:
        return lambda report, first_row: parse_alarm_payload(items, report, first_row)

    outcomes = engine.ingest_payloads(
        [(payload(good[:2]), "api"), (payload(bad), "api"), (payload(good[2:]), "api")]
    )
    assert [getattr(o, "accepted", None) for o in outcomes] == [2, 1, 1]
    assert engine.store.counts("live")["alarms"] == 4


# -- a failed write ------------------------------------------------------------------------


def test_a_failed_write_leaves_nothing_behind_in_memory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'noc.db'}"
    store = GatedStore(url)
    store.gate.set()
    engine = NocEngine(store, ScriptedClock(NOW), stream="live")
    engine.ingest([parse(alarm("a1"))])
    store.fail = True
    with pytest.raises(OSError, match="disk full"):
        engine.ingest([parse(alarm("a2", at=NOW + 1))])
    store.fail = False
    result = engine.ingest([parse(alarm("a2", at=NOW + 1)), parse(alarm("a3", at=NOW + 2))])
    assert result.accepted == 2  # a2 was not taken for stored
    live = engine.incident(result.touched[0], 0, 10)
    assert [m["id"] for m in live["members"]] == ["a1", "a2", "a3"]
    assert live["size"] == 3 and live["members"][1]["issues"] == []  # not a "duplicate id"
    fresh = NocEngine(SqlNocStore(url), ScriptedClock(NOW), stream="live")
    fresh.warm_up()
    assert heads(fresh) == heads(engine)
    for incident_id in heads(engine):  # the engine shows exactly what a restart would
        assert engine.incident(incident_id, 0, 10) == fresh.incident(incident_id, 0, 10)


def parse(body: dict[str, Any]) -> Any:
    return parse_alarm_payload([body], InputReport())[0]


# -- ids -----------------------------------------------------------------------------------


def test_alarms_without_an_id_are_never_taken_for_stored_ones(
    client: TestClient, settings: Settings
) -> None:
    """An id-less alarm is named after its row: a row given twice, in one run or across a
    restart, would make a new alarm look like one already stored."""
    assert client.post("/v1/alarms", json=alarm("a")).json()["accepted"] == 1
    second = client.post("/v1/alarms", json=[alarm("a"), alarm(None, device="r2")]).json()
    assert (second["accepted"], second["already_stored"]) == (1, 1)
    third = client.post("/v1/alarms", json=alarm(None, device="r3")).json()
    assert (third["accepted"], third["already_stored"]) == (1, 0)
    fourth = client.post("/v1/alarms", json=[alarm("a"), 42]).json()  # 42: a stand-in
    assert (fourth["accepted"], fourth["already_stored"]) == (1, 1)
    assert stored(client) == 4
    with TestClient(_app(settings, ScriptedClock(NOW)), headers=OPERATOR) as again:
        after = again.post("/v1/alarms", json=[alarm(None, device="r4"), 43]).json()
        assert (after["accepted"], after["already_stored"]) == (2, 0)
        assert stored(again) == 6


def test_an_id_longer_than_the_column_is_kept_whole_and_distinct(
    client: TestClient, settings: Settings
) -> None:
    long_a, long_b = "x" * 255 + "A", "x" * 255 + "B"
    answer = client.post("/v1/alarms", json=[alarm(long_a), alarm(long_b, device="r2")]).json()
    assert answer["accepted"] == 2 and answer["input_problems"]["counts"] == {"malformed": 2}
    assert "at most 255" in answer["input_problems"]["examples"]["malformed"][0]
    assert stored(client) == 2
    with TestClient(_app(settings, ScriptedClock(NOW)), headers=OPERATOR) as again:
        resent = again.post("/v1/alarms", json=[alarm(long_a)]).json()
        assert (resent["accepted"], resent["already_stored"]) == (0, 1)


# -- the request itself --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"raised_at": ' + b"9" * 5000 + b"}", "not usable JSON"),
    ],
    ids=["deep", "huge-integer"],
)
@pytest.mark.parametrize("route", ["/v1/alarms", "/v1/alarms/alertmanager"])
def test_unusable_json_is_a_400(client: TestClient, route: str, body: bytes, says: str) -> None:
    answer = client.post(route, content=body, headers=JSON)
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "InvalidJSON"
    assert says in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("route", "method"),
    [
        ("/v1/alarms", "post"),
        ("/v1/maintenance", "post"),
        ("/v1/silences", "post"),
        ("/v1/incidents/live-0000000/ack", "post"),
    ],
)
@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_is_a_413_on_every_route(
    client: TestClient, route: str, method: str, chunked: bool
) -> None:
    body = b'{"comment": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'
    step = 1 << 20
    content: Any = iter([body[i : i + step] for i in range(0, len(body), step)])
    answer = client.request(method, route, content=content if chunked else body, headers=JSON)
    assert answer.status_code == 413
    assert "body over" in answer.json()["error"]["message"]


def test_maintenance_device_names_are_bounded_and_valid(client: TestClient) -> None:
    window = {"starts_at": NOW, "ends_at": NOW + 60}
    long_name = client.post("/v1/maintenance", json={**window, "devices": ["d" * 256]})
    assert long_name.status_code == 422
    bad = b'{"devices":["r\\ud800"],"starts_at":1700000000,"ends_at":1700000100}'
    assert client.post("/v1/maintenance", content=bad, headers=JSON).status_code == 422
    assert client.get("/v1/maintenance").json()["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"offset": "100000000000000000000"},
        {"offset": str(2**63)},
        {"min_size": "100000000000000000000"},
        {"since": "nan"},
        {"until": "-inf"},
        {"since": "1e400"},
    ],
)
def test_query_numbers_out_of_range_are_a_422(client: TestClient, params: dict[str, str]) -> None:
    answer = client.get("/v1/incidents", params=params)
    assert answer.status_code == 422
    assert next(iter(params)) in answer.json()["error"]["message"]


def test_a_huge_members_offset_is_a_422(client: TestClient) -> None:
    incident = client.post("/v1/alarms", json=alarm("a1")).json()["incidents"][0]
    answer = client.get(f"/v1/incidents/{incident}", params={"members_offset": str(10**20)})
    assert answer.status_code == 422


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("12", (None, 12)),
        ("ab12cd34-7", ("ab12cd34", 7)),
        ("²", None),
        ("9" * 5000, None),
        ("-1", None),
        ("", None),
        ("a-b-1", None),
        ("é-1", None),
        ("ab12cd34-", None),
    ],
)
def test_only_an_id_the_server_could_give_resumes_the_stream(
    header: str, expected: tuple[str | None, int] | None
) -> None:
    assert _event_id(header) == expected


@pytest.mark.parametrize("pattern", ["a{4294967295}", "a{1,99999999999}"])
def test_a_regex_with_an_impossible_repeat_is_refused(pattern: str) -> None:
    with pytest.raises(InvalidInputError, match="bad regex"):
        check_regex(pattern, "matcher device")


@pytest.mark.parametrize("origin", ["http://[::1", "http://[fe80::1%zz"])
def test_a_malformed_origin_is_refused_like_a_foreign_one(client: TestClient, origin: str) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/v1/alarms/ws", headers={"origin": origin}),
    ):
        pass
    assert refused.value.code == noc_ws.POLICY_VIOLATION


def test_a_rejected_value_is_not_echoed_whole(client: TestClient) -> None:
    answer = client.post("/v1/alarms", json=alarm("m1", at="x" * 1_000_000))
    assert answer.status_code == 200
    assert len(answer.content) < 5_000
    incident = answer.json()["incidents"][0]
    member = client.get(f"/v1/incidents/{incident}").json()["members"][0]
    assert member["alarm_type"] == MALFORMED_TYPE
    assert len(member["attributes"]["error"]) <= 500


def test_a_reader_too_far_behind_has_its_stream_ended_not_thinned(tmp_path: Path) -> None:
    """Events dropped silently would leave a console showing a wrong list for good; the
    stream ends instead, and the console reconnects and reads the list again."""
    engine = on_file(tmp_path)

    async def read() -> list[str]:
        response = await incident_stream(Reader(), engine)  # type: ignore[arg-type]
        stream = aiter(response.body_iterator)
        chunks = [str(await anext(stream))]  # the reader is connected
        for number in range(10_001):  # one more than the reader's queue holds
            engine._emit({"type": "silence", "number": number})
        async for chunk in stream:
            chunks.append(str(chunk))
        return chunks

    chunks = asyncio.run(asyncio.wait_for(read(), 30))
    events = [c for c in chunks if c.startswith("id: ")]
    assert 0 < len(events) < 10_001  # it ended on its own, before the queue was read through


def test_huge_attributes_are_cut_said_and_counted_never_the_alarm(client: TestClient) -> None:
    note = "é" * 1_000_000  # a megabyte of "additional text"
    many = {f"k{i}": "v" for i in range(150)}
    answer = client.post(
        "/v1/alarms",
        json=[alarm("big", note=note, short="kept"), alarm("wide", device="r2", **many)],
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 2
    problems = answer.json()["input_problems"]
    assert problems["counts"] == {"attributes_cut": 2}
    assert "'note': 1000000 characters, cut to 4096" in problems["examples"]["attributes_cut"][0]
    assert len(answer.content) < 5_000  # nothing of the text echoed
    members = {
        m["id"]: m
        for incident in answer.json()["incidents"]
        for m in client.get(f"/v1/incidents/{incident}").json()["members"]
    }
    big, wide = members["big"], members["wide"]
    assert big["alarm_type"] == "LinkDown" and big["device"] == "r1"  # the alarm itself
    assert big["attributes"]["note"] == "é" * 4096 and big["attributes"]["short"] == "kept"
    assert "cut to 4096" in big["attributes"]["allo_cut"]
    assert len(wide["attributes"]) == 100  # the first 99, and what was left out
    assert wide["attributes"]["k98"] == "v" and "k99" not in wide["attributes"]
    assert wide["attributes"]["allo_cut"] == "51 attributes beyond the first 99 left out"


def test_a_reader_that_saw_no_event_yet_resumes_from_where_it_connected(tmp_path: Path) -> None:
    """The first thing a stream says is its position: a console that reconnects before
    any event came (a proxy's idle timeout, a restart) still gets what happened between."""
    engine = on_file(tmp_path)

    async def first_chunk() -> str:
        response = await incident_stream(Reader(), engine)  # type: ignore[arg-type]
        async for chunk in response.body_iterator:
            return str(chunk)
        return ""

    async def resumed(last: str) -> list[str]:
        response = await incident_stream(
            Reader(),  # type: ignore[arg-type]
            engine,
            max_events=3,
            last_event_id=last,
        )
        return [str(chunk) async for chunk in response.body_iterator]

    preamble = asyncio.run(asyncio.wait_for(first_chunk(), 10))
    position = next(line for line in preamble.splitlines() if line.startswith("id: "))
    assert position == f"id: {engine.epoch}-{engine.version}"
    for number in range(3):  # while the reader is away
        engine._emit({"type": "silence", "number": number})
    chunks = asyncio.run(asyncio.wait_for(resumed(position.removeprefix("id: ")), 10))
    events = [c for c in chunks if c.startswith("id: ")]
    assert [e.splitlines()[1] for e in events] == ["event: silence"] * 3
    assert "id: " not in chunks[0]  # a resumed reader keeps its own position


def test_a_stream_that_never_starts_leaves_no_listener(tmp_path: Path) -> None:
    engine = on_file(tmp_path)

    async def abandon() -> None:
        await incident_stream(Reader(connected=False), engine)  # type: ignore[arg-type]  # never sent

    asyncio.run(abandon())
    assert engine._listeners == {}  # nothing called at every event for ever
