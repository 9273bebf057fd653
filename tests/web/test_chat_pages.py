"""The chat demo page, the advisor page and the widget's files are served."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from allo.config import Settings
from allo.web.app import create_app


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_chat_page_embeds_the_widget_with_one_script_tag(client: TestClient) -> None:
    response = client.get("/chat")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="fr">' in response.text
    assert response.text.count('<script src="/static/widget.js" defer></script>') == 1


def test_advisor_page_renders(client: TestClient) -> None:
    response = client.get("/advisor")
    assert response.status_code == 200
    assert "Espace conseiller" in response.text
    assert 'id="advisor-token"' in response.text
    assert '<script src="/static/advisor.js" defer></script>' in response.text


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/static/widget.js", "javascript"),
        ("/static/widget.css", "text/css"),
        ("/static/advisor.js", "javascript"),
    ],
)
def test_widget_files_are_served(client: TestClient, path: str, kind: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert kind in response.headers["content-type"]
    if path.endswith(".js"):
        for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write"):
            assert sink not in response.text  # everything is shown with textContent


def test_chat_pages_stay_out_of_the_api_spec(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/chat" not in paths
    assert "/advisor" not in paths


def test_widget_origins_allow_cross_site_chat_only_for_listed_sites(settings: Settings) -> None:
    allowed = settings.model_copy(update={"widget_origins": ["https://www.ondea.example"]})
    with TestClient(create_app(allowed)) as client:
        preflight = client.options(
            "/v1/conversations",
            headers={
                "Origin": "https://www.ondea.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-customer-token",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://www.ondea.example"
        other = client.options(
            "/v1/conversations",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize("origin", ["*", "www.ondea.example", "https://ondea.example/chat"])
def test_widget_origins_must_be_plain_origins(origin: str) -> None:
    with pytest.raises(ValidationError, match="not an origin"):
        Settings(widget_origins=[origin])
