"""The gateway over HTTP: declared models, the audit log and budgets, and who may see them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from allo.config import ApiKey, Settings
from allo.gateway.audit import AuditRecord
from allo.gateway.config import TeamBudget
from allo.web.app import create_app

ADMIN = {"X-Admin-Token": "jeton-admin-de-test"}
KEY = "cle-api-equipe-care-0123456789"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    configured = settings.model_copy(
        update={
            "admin_token": SecretStr(ADMIN["X-Admin-Token"]),
            "api_keys": [ApiKey(token=SecretStr(KEY), user="alice", team="care")],
            "gateway": settings.gateway.model_copy(
                update={"budgets": {"care": TeamBudget(tokens_per_day=1000)}}
            ),
        }
    )
    with TestClient(create_app(configured)) as test_client:
        yield test_client


def _record(client: TestClient, team: str, tokens: int) -> None:
    gateway = client.app.state.knowledge.gateway  # type: ignore[attr-defined]
    gateway.audit.record(
        AuditRecord.new(
            at=gateway.clock.now(),
            user="u1",
            team=team,
            model="qwen-0.5b",
            outcome="ok",
            data_class="public",
            prompt_tokens=tokens,
        )
    )


def test_models_are_listed_with_where_data_goes(client: TestClient) -> None:
    models = {m["name"]: m for m in client.get("/v1/models").json()}
    assert models["extractive"]["default"] and models["extractive"]["reachable"]
    assert models["qwen-0.5b"]["location"] == "local"
    assert "api_key_env" not in models["qwen-0.5b"] and "base_url" not in models["qwen-0.5b"]


def test_the_audit_log_is_for_admins_only(client: TestClient) -> None:
    _record(client, "care", 120)
    assert client.get("/v1/audit").status_code == 401
    assert client.get("/v1/audit", headers={"X-Admin-Token": "wrong"}).status_code == 401
    assert client.get("/v1/audit", headers={"Authorization": f"Bearer {KEY}"}).status_code == 401
    records = client.get("/v1/audit", headers=ADMIN).json()["records"]
    assert [(r["team"], r["prompt_tokens"]) for r in records] == [("care", 120)]
    assert client.get("/v1/audit?outcome=nonsense", headers=ADMIN).status_code == 422


def test_audit_over_http_is_off_without_an_admin_token(settings: Settings) -> None:
    with TestClient(create_app(settings)) as plain:
        response = plain.get("/v1/audit", headers=ADMIN)
    assert response.status_code == 503
    assert "ALLO_ADMIN_TOKEN" in response.json()["error"]["message"]


def test_a_team_sees_its_own_usage_and_admins_see_all(client: TestClient) -> None:
    _record(client, "care", 300)
    _record(client, "noc", 50)
    own = client.get("/v1/usage", headers={"Authorization": f"Bearer {KEY}"}).json()["teams"]
    assert own == [
        {
            "team": "care",
            "tokens_today": 300,
            "tokens_per_day": 1000,
            "tokens_left": 700,
            "requests_last_minute": 1,
            "requests_per_minute": None,
            "resets_at": own[0]["resets_at"],
        }
    ]
    every = client.get("/v1/usage", headers=ADMIN).json()["teams"]
    assert [t["team"] for t in every] == ["care", "noc"]
    assert client.get("/v1/usage").status_code == 401
    bad = client.get("/v1/usage", headers={"Authorization": "Bearer not-a-key"})
    assert bad.status_code == 401 and "unknown API key" in bad.text
