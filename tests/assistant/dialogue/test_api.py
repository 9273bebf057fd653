"""The REST API of conversations and of the advisor queue (FastAPI TestClient)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from allo.assistant.session import Assistant
from allo.config import PersonalSecret, Settings
from allo.knowledge.service import KnowledgeBase
from allo.web.app import create_app

ADVISOR = {"X-Advisor-Token": "s3cret", "X-Advisor-Name": "Anne"}


@pytest.fixture
def client(
    settings: Settings,
    demo_kb: KnowledgeBase,
    assistant: Assistant,
) -> Iterator[TestClient]:
    settings = settings.model_copy(update={"advisor_token": SecretStr("s3cret")})
    app = create_app(settings, knowledge=demo_kb)
    app.state.assistant = assistant
    yield TestClient(app)  # no lifespan: the shared demo KB stays open


def open_one(client: TestClient) -> tuple[str, dict[str, str]]:
    response = client.post("/v1/conversations")
    assert response.status_code == 201
    body = response.json()
    return body["conversation_id"], {"X-Customer-Token": body["customer_token"]}


def test_customer_to_advisor_round_trip(client: TestClient) -> None:
    cid, customer = open_one(client)
    url = f"/v1/conversations/{cid}/messages"
    first = client.post(
        url,
        json={"message_id": "m1", "seq": 1, "text": "Je veux installer ma nouvelle Livebox 6"},
        headers=customer,
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["action"] == "tutorial_start"
    kinds = [t["payload"].get("kind") for t in body["turns"] if t["role"] == "assistant"]
    assert "buttons" in kinds
    replay = client.post(
        url,
        json={"message_id": "m1", "seq": 1, "text": "Je veux installer ma nouvelle Livebox 6"},
        headers=customer,
    )
    assert replay.json()["replayed"] is True
    handoff = client.post(
        url,
        json={"message_id": "m2", "seq": 2, "text": "je voudrais parler à un conseiller"},
        headers=customer,
    )
    assert handoff.json()["status"] == "waiting_advisor"
    queue = client.get("/v1/advisor/queue", headers=ADVISOR).json()["items"]
    assert queue[0]["conversation_id"] == cid
    assert queue[0]["summary"]["tutorial_id"] == "installation_livebox"
    taken = client.post(f"/v1/advisor/conversations/{cid}/take", headers=ADVISOR)
    assert taken.status_code == 200 and taken.json()["status"] == "with_advisor"
    said = client.post(
        f"/v1/advisor/conversations/{cid}/messages",
        headers=ADVISOR,
        json={"text": "Bonjour, Anne du service client."},
    )
    assert said.status_code == 201
    seen = client.get(f"/v1/conversations/{cid}", headers=customer).json()
    assert seen["status"] == "with_advisor"
    assert seen["turns"][-1] == {
        **seen["turns"][-1],
        "role": "advisor",
        "text": "Bonjour, Anne du service client.",
    }


def test_answers_from_the_knowledge_base(client: TestClient) -> None:
    cid, customer = open_one(client)
    body = client.post(
        f"/v1/conversations/{cid}/messages",
        headers=customer,
        json={"message_id": "a", "text": "comment résilier mon abonnement ?"},
    ).json()
    assert body["action"] == "answer"
    assert body["turns"][1]["payload"]["citations"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"message_id": "m", "text": ""}, 422),
        ({"message_id": "m", "text": "x" * 2001}, 422),
        ({"message_id": "m", "text": "a\x00b"}, 422),
        ({"message_id": "m"}, 422),
        ({"message_id": "m", "text": "a", "payload": "b"}, 422),
        ({"message_id": "", "text": "bonjour"}, 422),
        ({"message_id": "m", "text": "bonjour", "seq": 5}, 409),
        ({"text": "bonjour"}, 422),
    ],
)
def test_bad_messages(client: TestClient, body: dict[str, object], status: int) -> None:
    cid, customer = open_one(client)
    response = client.post(f"/v1/conversations/{cid}/messages", json=body, headers=customer)
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]


def test_binary_body_is_refused(client: TestClient) -> None:
    cid, customer = open_one(client)
    response = client.post(
        f"/v1/conversations/{cid}/messages",
        content=b"\xff\xfe\x00\x01",
        headers={**customer, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert "error" in response.json()


def test_tokens_and_unknown_ids(client: TestClient) -> None:
    cid, customer = open_one(client)
    _, other = open_one(client)
    assert client.get(f"/v1/conversations/{cid}").status_code == 401
    assert client.get(f"/v1/conversations/{cid}", headers=other).status_code == 404
    assert (
        client.get("/v1/conversations/c_unknown_conversation", headers=customer).status_code == 404
    )
    assert client.get("/v1/advisor/queue").status_code == 401
    assert client.get("/v1/advisor/queue", headers={"X-Advisor-Token": "nope"}).status_code == 401
    response = client.post("/v1/advisor/conversations/c_unknown_conversation/take", headers=ADVISOR)
    assert response.status_code == 404
    response = client.post(f"/v1/advisor/conversations/{cid}/take", headers=ADVISOR)
    assert response.status_code == 409  # still with the bot


def test_advisor_access_not_configured(client: TestClient) -> None:
    client.app.state.settings = client.app.state.settings.model_copy(  # type: ignore[attr-defined]
        update={"advisor_token": None}
    )
    response = client.get("/v1/advisor/queue", headers=ADVISOR)
    assert response.status_code == 503
    assert "access not configured: set ALLO_ADVISOR_TOKEN" in response.json()["error"]["message"]


def test_openapi_lists_the_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/conversations/{conversation_id}/messages" in paths
    assert "/v1/advisor/queue" in paths


ANNE = "jeton-personnel-d-anne-conseil"
BRUNO = "jeton-personnel-de-bruno-conseil"


def test_a_personal_advisor_secret_owns_the_conversation_it_took(client: TestClient) -> None:
    people = [
        PersonalSecret(token=SecretStr(ANNE), name="anne"),
        PersonalSecret(token=SecretStr(BRUNO), name="bruno"),
    ]
    client.app.state.settings = client.app.state.settings.model_copy(  # type: ignore[attr-defined]
        update={"advisors": people}
    )
    cid, customer = open_one(client)
    handoff = client.post(
        f"/v1/conversations/{cid}/messages",
        json={"message_id": "m1", "seq": 1, "text": "je voudrais parler à un conseiller"},
        headers=customer,
    )
    assert handoff.json()["status"] == "waiting_advisor"
    anne = {"X-Advisor-Token": ANNE, "X-Advisor-Name": "bruno"}  # the typed name is ignored
    taken = client.post(f"/v1/advisor/conversations/{cid}/take", headers=anne)
    assert taken.status_code == 200 and taken.json()["advisor"] == "anne"
    # Bruno cannot write in Anne's conversation, whatever name he types
    bruno = {"X-Advisor-Token": BRUNO, "X-Advisor-Name": "anne"}
    intruding = client.post(
        f"/v1/advisor/conversations/{cid}/messages", headers=bruno, json={"text": "Bonjour"}
    )
    assert intruding.status_code == 409
    # the shared secret with a typed name cannot either (its holder is not "anne" the account)
    shared = {"X-Advisor-Token": "s3cret", "X-Advisor-Name": "Anne"}
    assert (
        client.post(
            f"/v1/advisor/conversations/{cid}/messages", headers=shared, json={"text": "Bonjour"}
        ).status_code
        == 409
    )
    said = client.post(
        f"/v1/advisor/conversations/{cid}/messages", headers=anne, json={"text": "Bonjour !"}
    )
    assert said.status_code == 201
    turns = client.get(f"/v1/conversations/{cid}", headers=customer).json()["turns"]
    assert [t["text"] for t in turns if t["role"] == "advisor"] == ["Bonjour !"]
    # with personal secrets only, the old shared one is refused
    client.app.state.settings = client.app.state.settings.model_copy(  # type: ignore[attr-defined]
        update={"advisor_token": None}
    )
    assert client.get("/v1/advisor/queue", headers=shared).status_code == 401
    assert client.get("/v1/advisor/queue", headers=anne).status_code == 200


def test_an_advisor_name_outside_latin1_arrives_percent_encoded(client: TestClient) -> None:
    """Browsers send no header outside Latin-1: the desk percent-encodes the name."""
    cid, customer = open_one(client)
    client.post(
        f"/v1/conversations/{cid}/messages",
        json={"message_id": "m1", "seq": 1, "text": "je voudrais parler à un conseiller"},
        headers=customer,
    )
    lukasz = {**ADVISOR, "X-Advisor-Name": quote("Łukasz Wróbel")}
    taken = client.post(f"/v1/advisor/conversations/{cid}/take", headers=lukasz)
    assert taken.status_code == 200, taken.text
    assert taken.json()["advisor"] == "Łukasz Wróbel"
