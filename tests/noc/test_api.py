"""The NOC HTTP API and console through FastAPI's test client, on a scripted clock."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from allo.config import PersonalSecret, Settings
from allo.noc.engine import NocEngine
from allo.noc.store import SqlNocStore
from allo.testing.clock import ScriptedClock
from allo.web.app import create_app

NOW = 1_700_000_000.0


@pytest.fixture
def clock() -> ScriptedClock:
    return ScriptedClock(NOW)


OPERATOR_TOKEN = "jeton-operateur-noc-de-test"
INGEST_TOKEN = "jeton-des-sources-d-alarmes"
OPERATOR = {"X-NOC-Token": OPERATOR_TOKEN}
SOURCE = {"Authorization": f"Bearer {INGEST_TOKEN}"}


def _app(settings: Settings, clock: ScriptedClock, **tokens: str | None):  # type: ignore[no-untyped-def]
    values = {"noc_token": OPERATOR_TOKEN, "noc_ingest_token": INGEST_TOKEN} | tokens
    secrets = {k: None if v is None else SecretStr(v) for k, v in values.items()}
    settings = settings.model_copy(update=secrets)
    engine = NocEngine(SqlNocStore(settings.resolved_database_url), clock, stream="live")
    return create_app(settings, noc_engine=engine)


@pytest.fixture
def client(settings: Settings, clock: ScriptedClock) -> Iterator[TestClient]:
    """An operator's client (the operator's token may send alarms too)."""
    with TestClient(_app(settings, clock), headers=OPERATOR) as test_client:
        yield test_client


def alert(name: str, instance: str, starts: str, status: str = "firing", ends: str = "") -> dict:  # type: ignore[type-arg]
    return {
        "status": status,
        "labels": {"alertname": name, "instance": instance, "severity": "critical"},
        "annotations": {"summary": f"{name} on {instance}"},
        "startsAt": starts,
        "endsAt": ends or "0001-01-01T00:00:00Z",
        "fingerprint": f"{name}-{instance}",
    }


def test_generic_alarms_to_incident_drill_down(client: TestClient) -> None:
    one = {"id": "a1", "device": "r1", "alarm_type": "LinkDown", "raised_at": NOW - 100}
    posted = client.post("/v1/alarms", json=one)
    assert posted.status_code == 200, posted.text
    assert posted.json()["accepted"] == 1
    batch = [
        {"id": "a2", "device": "r1", "alarm_type": "LinkDown", "raised_at": NOW - 90},
        {"id": "a3", "device": "r2", "alarm_type": "LOS", "raised_at": NOW - 80, "site": "Lyon"},
    ]
    body = client.post("/v1/alarms", json={"alarms": batch}).json()
    assert body["accepted"] == 2 and len(body["incidents"]) == 2
    listing = client.get("/v1/incidents", params={"limit": 1}).json()
    assert listing["total"] == 2 and len(listing["items"]) == 1 and listing["limit"] == 1
    r1 = client.get("/v1/incidents", params={"device": "r1"}).json()["items"][0]
    assert r1["size"] == 2 and r1["state"] == "open" and r1["status"] == "new"
    detail = client.get(f"/v1/incidents/{r1['id']}").json()
    assert [m["id"] for m in detail["members"]] == ["a1", "a2"]
    assert [m["reason"] for m in detail["members"]] == ["head", "duplicate"]
    assert detail["explanation"]["fr"].startswith("Cause probable")
    assert detail["explanation"]["en"].startswith("Probable root")
    again = client.post("/v1/alarms", json={"alarms": batch}).json()
    assert again["accepted"] == 0 and again["already_stored"] == 2


def test_alertmanager_webhook_firing_then_resolved(client: TestClient) -> None:
    payload = {
        "version": "4",
        "status": "firing",
        "receiver": "allo",
        "alerts": [alert("HighLatency", "sw1:9100", "2023-11-14T22:00:00Z")],
    }
    first = client.post("/v1/alarms/alertmanager", json=payload).json()
    assert first["accepted"] == 1
    payload["alerts"] = [
        alert("HighLatency", "sw1:9100", "2023-11-14T22:00:00Z", "resolved", "2023-11-14T22:05:00Z")
    ]
    second = client.post("/v1/alarms/alertmanager", json=payload).json()
    assert second["accepted"] == 0 and second["cleared"] == 1
    item = client.get("/v1/incidents").json()["items"][0]
    member = client.get(f"/v1/incidents/{item['id']}").json()["members"][0]
    assert member["device"] == "sw1:9100" and member["cleared_at"] is not None
    assert member["attributes"]["annotation.summary"] == "HighLatency on sw1:9100"


@pytest.mark.parametrize(
    ("path", "body", "status", "kind"),
    [
        ("/v1/alarms", b"{not json", 400, "InvalidJSON"),
        ("/v1/alarms", b"", 400, "InvalidJSON"),
        ("/v1/alarms", b'"just a string"', 422, "InvalidInputError"),
        ("/v1/alarms/alertmanager", b'{"status": "firing"}', 422, "InvalidInputError"),
        ("/v1/alarms/alertmanager", b"\xff\xfe", 400, "InvalidJSON"),
    ],
)
def test_bad_bodies_get_a_json_error(
    client: TestClient, path: str, body: bytes, status: int, kind: str
) -> None:
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.json()["error"]["type"] == kind and response.json()["error"]["message"]


def test_malformed_items_are_counted_not_dropped(client: TestClient) -> None:
    body = client.post(
        "/v1/alarms",
        json=[
            {"device": "r1", "alarm_type": "X", "raised_at": NOW},
            {"device": "r1"},
            42,
            {"device": "r9", "alarm_type": "X", "raised_at": NOW + 10 * 86400},
        ],
    ).json()
    assert body["accepted"] == 4
    assert body["input_problems"]["counts"] == {"malformed": 2}
    assert any("future" in issue for a in body["alarms"] for issue in a["issues"])
    status = client.get("/v1/noc/status").json()
    assert status["counts"]["alarms"] == 4
    assert status["input_problems"]["counts"]["far_future"] == 1


def test_ack_resolve_and_errors(client: TestClient, clock: ScriptedClock) -> None:
    client.post("/v1/alarms", json={"id": "a", "device": "r", "alarm_type": "T", "raised_at": NOW})
    incident = client.get("/v1/incidents").json()["items"][0]["id"]
    clock.advance(30)
    acked = client.post(f"/v1/incidents/{incident}/ack", json={"by": "Nina", "note": "je regarde"})
    assert acked.status_code == 200
    assert acked.json()["status"] == "acknowledged" and acked.json()["acknowledged_at"] == NOW + 30
    assert client.post(f"/v1/incidents/{incident}/resolve").json()["status"] == "resolved"
    conflict = client.post(f"/v1/incidents/{incident}/ack")
    assert conflict.status_code == 409 and conflict.json()["error"]["type"] == "Conflict"
    assert client.get("/v1/incidents", params={"status": "resolved"}).json()["total"] == 1
    assert client.get("/v1/incidents", params={"status": "new"}).json()["total"] == 0
    missing = client.get("/v1/incidents/nope")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "NotFoundError"
    assert client.post("/v1/incidents/nope/ack").status_code == 404
    assert client.get("/v1/incidents", params={"status": "bogus"}).status_code == 422
    assert client.get("/v1/incidents", params={"limit": 0}).status_code == 422
    bad = client.post(f"/v1/incidents/{incident}/ack", json={"by": "x" * 500})
    assert bad.status_code == 422 and bad.json()["error"]["type"] == "InvalidRequest"


def test_silences_and_maintenance_over_http(client: TestClient, clock: ScriptedClock) -> None:
    created = client.post(
        "/v1/silences",
        json={"matchers": [{"name": "device", "value": "r1"}], "duration_seconds": 3600},
    )
    assert created.status_code == 201, created.text
    silence = created.json()
    assert silence["state"] == "active" and silence["ends_at"] == NOW + 3600
    client.post(
        "/v1/alarms", json={"id": "s1", "device": "r1", "alarm_type": "T", "raised_at": NOW}
    )
    assert client.get("/v1/incidents").json()["items"][0]["silenced_by"] == [silence["id"]]
    expired = client.delete(f"/v1/silences/{silence['id']}").json()
    assert expired["state"] == "expired"
    assert client.get("/v1/incidents").json()["items"][0]["silenced_by"] == []
    assert client.get("/v1/silences").json()["total"] == 1
    for bad in (
        {"matchers": [], "duration_seconds": 60},
        {"matchers": [{"name": "device", "value": "("}]},
        {"matchers": [{"name": "device", "value": "(", "op": "=~"}], "duration_seconds": 60},
        {"matchers": [{"name": "device", "value": "r"}], "starts_at": NOW, "ends_at": NOW - 1},
        {"matchers": [{"name": "device", "value": "r"}], "ends_at": "demain"},
    ):
        response = client.post("/v1/silences", json=bad)
        assert response.status_code == 422, bad
        assert "error" in response.json()
    assert client.delete("/v1/silences/nope").status_code == 404

    window = client.post(
        "/v1/maintenance",
        json={
            "devices": ["r7"],
            "starts_at": "2023-11-14T22:00:00Z",
            "ends_at": NOW + 3600,
            "comment": "swap",
        },
    )
    assert window.status_code == 201, window.text
    client.post(
        "/v1/alarms", json={"id": "m1", "device": "r7", "alarm_type": "T", "raised_at": NOW}
    )
    maintenance = client.get("/v1/incidents", params={"kind": "maintenance"}).json()["items"]
    assert len(maintenance) == 1 and maintenance[0]["head"]["id"] == "m1"
    assert client.get("/v1/maintenance").json()["total"] == 1
    bad_window = client.post("/v1/maintenance", json={"devices": [], "starts_at": 1, "ends_at": 2})
    assert bad_window.status_code == 422
    assert client.delete(f"/v1/maintenance/{window.json()['id']}").status_code == 204
    assert client.delete(f"/v1/maintenance/{window.json()['id']}").status_code == 404


def test_server_sent_events_replay_from_an_event_id(client: TestClient) -> None:
    # The test client reads a response to its end: events are first made, then replayed
    # from the history with Last-Event-ID (as a reconnecting browser does), up to max_events.
    client.post("/v1/alarms", json={"id": "e1", "device": "r", "alarm_type": "T", "raised_at": NOW})
    client.post("/v1/alarms", json={"id": "e2", "device": "q", "alarm_type": "T", "raised_at": NOW})
    response = client.get(
        "/v1/incidents/stream", params={"max_events": 2}, headers={"Last-Event-ID": "0"}
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in response.text.split("\n\n") if b.startswith("id:")]
    ids = [b.splitlines()[0].removeprefix("id: ") for b in blocks]
    epoch = ids[0].split("-")[0]
    assert len(epoch) == 8 and ids == [f"{epoch}-1", f"{epoch}-2"]
    assert all("event: incident" in b and '"status": "new"' in b for b in blocks)

    # the id the server gave resumes after it; another engine's (a restart, another
    # worker) cannot, and the stream says so before anything else
    again = client.get(
        "/v1/incidents/stream", params={"max_events": 1}, headers={"Last-Event-ID": ids[0]}
    )
    assert "id: " + ids[1] in again.text and "event: incident" in again.text
    foreign = client.get(
        "/v1/incidents/stream", params={"max_events": 1}, headers={"Last-Event-ID": "0badcafe-1"}
    )
    block = next(b for b in foreign.text.split("\n\n") if b.startswith("id:"))
    assert block.splitlines()[:2] == [f"id: {epoch}-2", "event: resync"]
    assert json.loads(block.splitlines()[2].removeprefix("data: ")) == {
        "type": "resync",
        "version": 2,
    }


def test_console_page_and_script(client: TestClient) -> None:
    page = client.get("/noc")
    assert page.status_code == 200 and "Console NOC" in page.text and "/static/noc.js" in page.text
    assert 'id="noc-login"' in page.text  # the page itself holds no data: it asks the token
    script = client.get("/static/noc.js").text
    assert (
        "X-NOC-Token" in script
        and "EventSource(" not in script
        and "innerHTML" not in script.replace("never\n// innerHTML", "")
    )


def test_restart_keeps_everything(settings: Settings, clock: ScriptedClock) -> None:
    alarms = [
        {"id": f"x{i}", "device": f"r{i % 3}", "alarm_type": "T", "raised_at": NOW + i}
        for i in range(30)
    ]
    with TestClient(_app(settings, clock), headers=OPERATOR) as first:
        first.post("/v1/alarms", json=alarms[:20])
        before = first.get("/v1/incidents").json()
    with TestClient(_app(settings, clock), headers=OPERATOR) as second:
        status = second.get("/v1/noc/status").json()
        assert status["recovered_at_start"] == 20
        assert second.get("/v1/incidents").json()["items"] == before["items"]
        again = second.post("/v1/alarms", json=alarms).json()
        assert again["accepted"] == 10 and again["already_stored"] == 20
        assert second.get("/v1/noc/status").json()["counts"]["alarms"] == 30


def test_silence_by_alertmanager_label_over_http(client: TestClient) -> None:
    webhook = {
        "version": "4",
        "status": "firing",
        "receiver": "allo",
        "alerts": [
            alert("DiskFull", "db-7", "2023-11-14T22:10:00Z"),
            alert("DiskFull", "web-1", "2023-11-14T22:10:00Z"),
        ],
    }
    assert client.post("/v1/alarms/alertmanager", json=webhook).status_code == 200
    created = client.post(
        "/v1/silences",
        json={
            "matchers": [
                {"name": "label.instance", "op": "=~", "value": "db-.*"},
                {"name": "label.alertname", "value": "DiskFull"},
            ],
            "duration_seconds": 600,
        },
    )
    assert created.status_code == 201, created.text
    items = client.get("/v1/incidents").json()["items"]
    silenced = {i["head"]["device"]: i["silenced_by"] for i in items}
    assert silenced == {"db-7": [created.json()["id"]], "web-1": []}
    unsafe = client.post(
        "/v1/silences",
        json={
            "matchers": [{"name": "label.instance", "op": "=~", "value": "(a+)+$"}],
            "duration_seconds": 60,
        },
    )
    assert unsafe.status_code == 422
    assert "repeated group" in unsafe.json()["error"]["message"]


# -- who may do what ----------------------------------------------------------------------

OPERATOR_ROUTES = [
    ("GET", "/v1/incidents"),
    ("GET", "/v1/incidents/stream"),
    ("GET", "/v1/incidents/live-1"),
    ("POST", "/v1/incidents/live-1/ack"),
    ("POST", "/v1/incidents/live-1/resolve"),
    ("GET", "/v1/silences"),
    ("POST", "/v1/silences"),
    ("DELETE", "/v1/silences/s1"),
    ("GET", "/v1/maintenance"),
    ("POST", "/v1/maintenance"),
    ("DELETE", "/v1/maintenance/m1"),
    ("GET", "/v1/noc/status"),
]
SOURCE_ROUTES = [("POST", "/v1/alarms"), ("POST", "/v1/alarms/alertmanager")]
SILENCE = {"matchers": [{"name": "device", "value": "r1"}], "duration_seconds": 600}


@pytest.mark.parametrize(("method", "path"), OPERATOR_ROUTES + SOURCE_ROUTES)
@pytest.mark.parametrize(
    "headers",
    [{}, {"X-NOC-Token": "faux"}, {"Authorization": "Bearer faux"}, {"X-Advisor-Token": "x"}],
    ids=["none", "wrong-operator", "wrong-bearer", "other-secret"],
)
def test_every_noc_route_refuses_a_missing_or_wrong_secret(
    settings: Settings, clock: ScriptedClock, method: str, path: str, headers: dict[str, str]
) -> None:
    with TestClient(_app(settings, clock)) as anonymous:
        response = anonymous.request(method, path, headers=headers, json={})
        assert response.status_code == 401
        assert "X-NOC-Token" in response.json()["error"]["message"]
        # and nothing changed
        status = anonymous.get("/v1/noc/status", headers=OPERATOR).json()
        assert (
            status["counts"]["alarms"] == 0
            and anonymous.get("/v1/silences", headers=OPERATOR).json()["total"] == 0
        )


def test_an_alarm_source_sends_alarms_and_nothing_else(
    settings: Settings, clock: ScriptedClock
) -> None:
    with TestClient(_app(settings, clock), headers=SOURCE) as source:
        alarm = {"id": "a", "device": "r1", "alarm_type": "T", "raised_at": NOW}
        sent = source.post("/v1/alarms", json=alarm)
        assert sent.status_code == 200 and sent.json()["accepted"] == 1
        assert sent.json()["input_problems"]["counts"] == {}
        hook = {
            "version": "4",
            "status": "firing",
            "alerts": [alert("Down", "r2", "2023-11-14T22:13:20Z")],
        }
        assert source.post("/v1/alarms/alertmanager", json=hook).status_code == 200
        # a leaked source secret cannot read incidents nor silence anything
        for method, path in OPERATOR_ROUTES:
            body = SILENCE if path == "/v1/silences" else {}
            assert source.request(method, path, json=body).status_code == 401, path
        assert source.get("/v1/silences", headers=OPERATOR).json()["total"] == 0


def test_the_operator_secret_cannot_be_given_as_a_bearer_key(
    settings: Settings, clock: ScriptedClock
) -> None:
    with TestClient(_app(settings, clock)) as anonymous:
        bearer = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        assert anonymous.get("/v1/incidents", headers=bearer).status_code == 401


def test_unconfigured_secrets_turn_the_noc_api_off(
    settings: Settings, clock: ScriptedClock
) -> None:
    with TestClient(_app(settings, clock, noc_token=None, noc_ingest_token=None)) as client:
        listing = client.get("/v1/incidents", headers=OPERATOR)
        assert listing.status_code == 503 and "ALLO_NOC_TOKEN" in listing.json()["error"]["message"]
        sent = client.post("/v1/alarms", headers=SOURCE, json={"device": "r", "alarm_type": "T"})
        assert sent.status_code == 503
        assert "ALLO_NOC_INGEST_TOKEN" in sent.json()["error"]["message"]
        assert client.get("/noc").status_code == 200  # the page itself says what to set


def test_without_an_ingest_secret_only_operators_send_alarms(
    settings: Settings, clock: ScriptedClock
) -> None:
    with TestClient(_app(settings, clock, noc_ingest_token=None)) as client:
        alarm = {"id": "a", "device": "r", "alarm_type": "T", "raised_at": NOW}
        assert client.post("/v1/alarms", headers=SOURCE, json=alarm).status_code == 401
        assert client.post("/v1/alarms", headers=OPERATOR, json=alarm).status_code == 200


NINA = "jeton-personnel-de-nina-au-noc"
OMAR = "jeton-personnel-d-omar-au-noc"


def _with_operators(settings: Settings, clock: ScriptedClock, shared: str | None) -> TestClient:
    people = [
        PersonalSecret(token=SecretStr(NINA), name="nina"),
        PersonalSecret(token=SecretStr(OMAR), name="omar"),
    ]
    app = _app(settings.model_copy(update={"noc_operators": people}), clock, noc_token=shared)
    return TestClient(app)


def test_a_personal_secret_records_its_holder_whatever_name_is_typed(
    settings: Settings, clock: ScriptedClock
) -> None:
    with _with_operators(settings, clock, OPERATOR_TOKEN) as client:
        nina, omar = {"X-NOC-Token": NINA}, {"X-NOC-Token": OMAR}
        alarm = {"id": "a", "device": "r1", "alarm_type": "T", "raised_at": NOW}
        assert client.post("/v1/alarms", headers=nina, json=alarm).status_code == 200
        assert client.get("/v1/noc/status", headers=nina).json()["operator"] == "nina"
        assert client.get("/v1/noc/status", headers=OPERATOR).json()["operator"] is None
        incident = client.get("/v1/incidents", headers=omar).json()["items"][0]["id"]
        acked = client.post(f"/v1/incidents/{incident}/ack", headers=nina, json={"by": "omar"})
        assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "nina"
        resolved = client.post(f"/v1/incidents/{incident}/resolve", headers=omar)
        assert resolved.json()["resolved_by"] == "omar"
        silence = client.post("/v1/silences", headers=omar, json=SILENCE | {"created_by": "nina"})
        assert silence.status_code == 201 and silence.json()["created_by"] == "omar"
        window = {"devices": ["r1"], "starts_at": NOW, "ends_at": NOW + 60, "created_by": "x"}
        made = client.post("/v1/maintenance", headers=nina, json=window)
        assert made.status_code == 201 and made.json()["created_by"] == "nina"
        # the shared secret still works, and keeps what its holder typed
        shared = client.post("/v1/silences", headers=OPERATOR, json=SILENCE | {"created_by": "Léa"})
        assert shared.json()["created_by"] == "Léa"
        # a personal secret is not a source's Bearer key
        bearer = {"Authorization": f"Bearer {NINA}"}
        assert client.post("/v1/alarms", headers=bearer, json=alarm).status_code == 401


def test_personal_secrets_alone_open_the_noc_api_and_nothing_else_does(
    settings: Settings, clock: ScriptedClock
) -> None:
    with _with_operators(settings, clock, None) as client:
        assert client.get("/v1/incidents", headers={"X-NOC-Token": OMAR}).status_code == 200
        for wrong in ({}, {"X-NOC-Token": OPERATOR_TOKEN}, {"X-NOC-Token": NINA[:-1]}):
            refused = client.get("/v1/incidents", headers=wrong)
            assert refused.status_code == 401 and "X-NOC-Token" in refused.text


def test_operators_need_distinct_names_and_secrets() -> None:
    same_name = [{"token": NINA, "name": "nina"}, {"token": OMAR, "name": "nina"}]
    with pytest.raises(ValueError, match="of their own"):
        Settings(noc_operators=same_name)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 16"):
        Settings(noc_operators=[{"token": "court", "name": "nina"}])  # type: ignore[list-item]


def test_a_graph_with_a_cycle_is_used_and_said_in_the_status(settings: Settings) -> None:
    from allo.noc.causal import CausalGraph
    from allo.web.routers.noc import engine_for

    (settings.data_dir / "noc").mkdir(parents=True)
    CausalGraph.from_matrix(np.array([[0, 1], [1, 0]])).save(
        settings.data_dir / "noc" / "graph.json"
    )
    engine = engine_for(settings, ScriptedClock(NOW))
    assert engine.graph is not None and len(engine.graph.edges) == 2
    problems = engine.report.to_json()
    assert problems["counts"] == {"graph_cycle": 1}
    assert "graph.json has a cycle (" in str(problems["examples"])
