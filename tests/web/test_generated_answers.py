"""``POST /v1/ask`` with a model: JSON and server-sent events, through the real gateway
(policy, budgets, audit) with a scripted provider in place of a language model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from allo.config import ApiKey, Settings
from allo.gateway.config import DataClass, DataLocation, ModelSpec, ProviderKind, TeamBudget
from allo.knowledge.service import KnowledgeBase
from allo.testing.providers import ScriptedProvider
from allo.web.app import create_app

GUIDE = """---
title: Code PUK
---
# Code PUK

Le code PUK débloque la carte SIM après trois codes PIN erronés. Il se trouve dans
l'Espace Client, rubrique Ma ligne, ou sur le support de la carte SIM.
"""
SUPPORTED = "Le code PUK se trouve dans l'Espace Client, rubrique Ma ligne [1]."
KEY = "cle-api-de-test-0123456789"


def configured(settings: Settings, **gateway: object) -> Settings:
    models = [
        *settings.gateway.models,
        ModelSpec(name="scripted", provider=ProviderKind.LOCAL, gguf_path=Path("none.gguf")),
        ModelSpec(
            name="cloud",
            provider=ProviderKind.OPENAI,
            model="m",
            base_url="https://api.example/v1",
            location=DataLocation.EXTERNAL,
        ),
    ]
    return settings.model_copy(
        update={"gateway": settings.gateway.model_copy(update={"models": models, **gateway})}
    )


def client_for(settings: Settings, provider: ScriptedProvider, tmp_path: Path) -> TestClient:
    kb = KnowledgeBase(settings, providers=lambda spec: provider)
    guide = tmp_path / "puk.md"
    guide.write_text(GUIDE, encoding="utf-8")
    kb.ingest([guide])
    return TestClient(create_app(settings, knowledge=kb))


@pytest.fixture
def client(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    with client_for(configured(settings), ScriptedProvider("scripted", SUPPORTED), tmp_path) as c:
        yield c


def events_of(body: str) -> list[tuple[str, dict[str, object]]]:
    frames = [frame for frame in body.split("\n\n") if frame.strip()]
    parsed = []
    for frame in frames:
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        parsed.append((lines["event"], json.loads(lines["data"])))
    return parsed


QUESTION = {"question": "Où trouver le code PUK ?", "model": "scripted"}


def test_a_generated_answer_cites_the_passage_and_says_which_model(client: TestClient) -> None:
    body = client.post("/v1/ask", json=QUESTION).json()
    assert body["generated"] and body["model"] == "scripted" and body["fallback"] is None
    assert body["answer"] == "Le code PUK se trouve dans l'Espace Client, rubrique Ma ligne. [1]"
    assert body["citations"][0]["title"] == "Code PUK"
    audit = client.app.state.knowledge.gateway.audit.query()  # type: ignore[attr-defined]
    assert [(r.model, r.outcome) for r in audit] == [("scripted", "ok")]


def test_the_same_answer_streams_as_server_sent_events(client: TestClient) -> None:
    response = client.post("/v1/ask", json=QUESTION | {"stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = events_of(response.text)
    assert [name for name, _ in events] == ["sentence", "answer"]
    assert events[0][1]["text"] == events[-1][1]["answer"]
    assert events[-1][1]["generated"] is True


def test_an_unsupported_answer_is_replaced_by_the_extractive_one(
    settings: Settings, tmp_path: Path
) -> None:
    invented = ScriptedProvider("scripted", "Le code PUK est envoyé gratuitement par SMS [1].")
    with client_for(configured(settings), invented, tmp_path) as client:
        body = client.post("/v1/ask", json=QUESTION).json()
        streamed = events_of(client.post("/v1/ask", json=QUESTION | {"stream": True}).text)
    assert not body["generated"] and body["fallback"] == "unsupported"
    assert "gratuitement" not in body["answer"] and "Espace Client" in body["answer"]
    assert "replace" in [name for name, _ in streamed]
    assert "gratuitement" not in json.dumps(streamed[-1][1], ensure_ascii=False)


def test_extractive_stays_the_default(client: TestClient) -> None:
    body = client.post("/v1/ask", json={"question": "Où trouver le code PUK ?"}).json()
    assert body["generated"] is False and body["model"] is None


def test_refusals_are_http_errors_before_any_event(settings: Settings, tmp_path: Path) -> None:
    strict = configured(
        settings,
        budgets={"public": TeamBudget(tokens_per_day=0)},
        untagged=DataClass.CONFIDENTIAL,  # the guide has no tag: confidential
    )
    provider = ScriptedProvider("cloud", SUPPORTED)
    with client_for(strict, provider, tmp_path) as client:
        unknown = client.post("/v1/ask", json=QUESTION | {"model": "gpt-9"})
        refused = client.post("/v1/ask", json=QUESTION | {"model": "cloud", "stream": True})
        spent = client.post("/v1/ask", json=QUESTION | {"stream": True})
    assert unknown.status_code == 422 and "unknown model 'gpt-9'" in unknown.text
    assert refused.status_code == 403 and "confidential" in refused.json()["error"]["message"]
    assert spent.status_code == 429 and "tokens" in spent.json()["error"]["message"]
    assert provider.seen == []


def test_api_keys_when_configured_are_required_for_models(
    settings: Settings, tmp_path: Path
) -> None:
    keyed = configured(settings).model_copy(
        update={"api_keys": [ApiKey(token=SecretStr(KEY), user="alice", team="care")]}
    )
    with client_for(keyed, ScriptedProvider("scripted", SUPPORTED), tmp_path) as client:
        anonymous = client.post("/v1/ask", json=QUESTION)
        wrong = client.post("/v1/ask", json=QUESTION, headers={"Authorization": "Bearer nope"})
        fine = client.post("/v1/ask", json=QUESTION, headers={"Authorization": f"Bearer {KEY}"})
        extractive = client.post("/v1/ask", json={"question": "Où trouver le code PUK ?"})
        records = client.app.state.knowledge.gateway.audit.query()  # type: ignore[attr-defined]
    assert anonymous.status_code == 401 and "API key" in anonymous.text
    assert wrong.status_code == 401
    assert fine.status_code == 200 and [(r.user, r.team) for r in records] == [("alice", "care")]
    assert extractive.status_code == 200  # the extractive answer stays open to customers
