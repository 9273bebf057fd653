"""The HTTP API and pages, through FastAPI's test client (real routing and validation)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from allo.config import Settings
from allo.knowledge.service import KnowledgeBase
from allo.web.app import create_app
from allo.web.uploads import safe_filename

ADMIN_TOKEN = "jeton-administrateur-de-test"
ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN)})


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """An administrator's client: the knowledge base can be changed."""
    with TestClient(create_app(settings), headers=ADMIN) as test_client:
        yield test_client


def _upload(client: TestClient, name: str, data: bytes) -> object:
    return client.post("/v1/documents", files={"file": (name, io.BytesIO(data), "text/plain")})


GUIDE = "# Code PUK\n\n## Étapes\n\n1. Ouvrez l'Espace Client.\n2. Lisez le code PUK.\n".encode()


def test_upload_list_ask_delete(client: TestClient) -> None:
    created = client.post("/v1/documents", files={"file": ("puk.md", GUIDE, "text/markdown")})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["added"] == 1 and body["chunks"] >= 1
    document_id = body["documents"][0]["id"]

    listing = client.get("/v1/documents").json()
    assert listing["total"] == 1 and listing["items"][0]["title"] == "Code PUK"

    answer = client.post("/v1/ask", json={"question": "Code PUK : quelles étapes ?"}).json()
    assert answer["citations"][0]["document_id"] == document_id
    assert answer["citations"][0]["link"].startswith(f"/documents/{document_id}#")
    assert "2. Lisez le code PUK." in answer["answer"]

    page = client.get(answer["citations"][0]["link"].split("#")[0])
    assert page.status_code == 200 and "Lisez le code PUK" in page.text

    assert client.delete(f"/v1/documents/{document_id}").status_code == 204
    assert client.get("/v1/documents").json()["total"] == 0
    assert client.delete(f"/v1/documents/{document_id}").status_code == 404


def test_reupload_same_name_replaces(client: TestClient) -> None:
    _upload(client, "a.md", b"# A\n\nversion un")
    second = _upload(client, "a.md", b"# A\n\nversion deux").json()  # type: ignore[attr-defined]
    assert second["updated"] == 1
    assert client.get("/v1/documents").json()["total"] == 1


@pytest.mark.parametrize(
    ("name", "data", "status", "fragment"),
    [
        ("virus.exe", b"MZ...", 415, "unsupported file type"),
        ("vide.md", b"", 422, "empty"),
        ("latin.txt", "été".encode("latin-1"), 422, "UTF-8"),
        ("casse.pdf", b"%PDF-1.4 broken", 422, "PDF"),
        ("...", b"text", 422, "file name"),
    ],
)
def test_bad_uploads_get_clear_4xx_and_change_nothing(
    client: TestClient, name: str, data: bytes, status: int, fragment: str
) -> None:
    response = _upload(client, name, data)
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert fragment in response.json()["error"]["message"]  # type: ignore[attr-defined]
    assert client.get("/v1/documents").json()["total"] == 0


def test_upload_over_the_limit_is_413(tmp_path: object, settings: Settings) -> None:
    small = settings.model_copy(update={"max_file_bytes": 1000})
    with TestClient(create_app(small), headers=ADMIN) as client:
        response = _upload(client, "gros.txt", b"a " * 2000)
        assert response.status_code == 413  # type: ignore[attr-defined]
        assert "limit" in response.json()["error"]["message"]  # type: ignore[attr-defined]


def test_hostile_file_names_stay_inside_the_data_folder(
    client: TestClient, settings: Settings
) -> None:
    response = _upload(client, "../../../../tmp/evil.md", b"# Evil\n\ntexte")
    assert response.status_code == 201  # type: ignore[attr-defined]
    kept = list(settings.uploads_dir.iterdir())
    assert [path.name for path in kept] == ["evil.md"]
    assert settings.uploads_dir.resolve() in kept[0].resolve().parents


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\docs\\Facture été.pdf", "Facture_ete.pdf"),
        ("..\\..\\x.md", "x.md"),
        ("/abs/path/guide.HTML", "guide.HTML"),
    ],
)
def test_safe_filename(raw: str, safe: str) -> None:
    assert safe_filename(raw) == safe


def test_ask_validation_errors_are_422(client: TestClient) -> None:
    assert client.post("/v1/ask", json={"question": ""}).status_code == 422
    assert client.post("/v1/ask", json={"question": "x" * 5000}).status_code == 422
    assert client.post("/v1/ask", json={"question": "ok", "mode": "magic"}).status_code == 422
    response = client.post(
        "/v1/ask", content=b"not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "error" in response.json()


def test_unknown_document_page_is_404(client: TestClient) -> None:
    assert client.get("/v1/documents/nope").status_code == 404
    assert client.get("/documents/nope").status_code == 404


def test_document_page_escapes_document_text(client: TestClient) -> None:
    created = _upload(
        client, "xss.md", b"# Titre <img src=x onerror=alert(1)>\n\n<script>alert(2)</script> texte"
    )
    document_id = created.json()["documents"][0]["id"]  # type: ignore[attr-defined]
    page = client.get(f"/documents/{document_id}").text
    assert "<script>alert(2)" not in page and "&lt;script&gt;" in page
    assert "<img src=x" not in page


def test_home_page_and_openapi(client: TestClient) -> None:
    home = client.get("/")
    assert (
        home.status_code == 200 and 'lang="fr"' in home.text and "Posez votre question" in home.text
    )
    spec = client.get("/openapi.json").json()
    for path in ("/v1/ask", "/v1/documents", "/v1/documents/{document_id}"):
        assert path in spec["paths"]
    assert client.get("/docs").status_code == 200
    assert client.get("/static/ask.js").status_code == 200


def test_pagination(client: TestClient) -> None:
    for index in range(5):
        _upload(client, f"doc{index}.md", f"# Document {index}\n\ntexte {index}".encode())
    first = client.get("/v1/documents", params={"limit": 2}).json()
    rest = client.get("/v1/documents", params={"offset": 2, "limit": 10}).json()
    assert first["total"] == 5 and len(first["items"]) == 2 and len(rest["items"]) == 3
    assert client.get("/v1/documents", params={"limit": 0}).status_code == 422


def test_shared_knowledge_base_is_used(settings: Settings) -> None:
    kb = KnowledgeBase(settings)
    with TestClient(create_app(settings, kb), headers=ADMIN) as client:
        _upload(client, "a.md", b"# A\n\ntexte")
    assert kb.store is not None


def test_only_an_administrator_changes_the_knowledge_base(settings: Settings) -> None:
    with TestClient(create_app(settings)) as anonymous:
        for headers in ({}, {"X-Admin-Token": "faux"}, {"X-Advisor-Token": ADMIN_TOKEN}):
            refused = anonymous.post(
                "/v1/documents", headers=headers, files={"file": ("a.md", GUIDE, "text/markdown")}
            )
            assert refused.status_code == 401
            assert "X-Admin-Token" in refused.json()["error"]["message"]
        assert anonymous.get("/v1/documents").json()["total"] == 0
        created = anonymous.post(
            "/v1/documents", headers=ADMIN, files={"file": ("a.md", GUIDE, "text/markdown")}
        )
        document_id = created.json()["documents"][0]["id"]
        assert anonymous.delete(f"/v1/documents/{document_id}").status_code == 401
        # reading stays open: customers follow citations
        assert anonymous.get(f"/v1/documents/{document_id}").status_code == 200
        assert anonymous.get(f"/documents/{document_id}").status_code == 200


def test_without_an_admin_secret_the_knowledge_base_is_read_only(settings: Settings) -> None:
    closed = settings.model_copy(update={"admin_token": None})
    with TestClient(create_app(closed)) as client:
        response = client.post("/v1/documents", files={"file": ("a.md", GUIDE, "text/markdown")})
        assert response.status_code == 503
        assert "ALLO_ADMIN_TOKEN" in response.json()["error"]["message"]


# -- security headers and links: a second line of defence, tested as a first ---------------


@pytest.mark.parametrize("path", ["/", "/noc", "/advisor", "/chat"])
def test_pages_run_only_this_sites_scripts_and_cannot_be_framed(
    client: TestClient, path: str
) -> None:
    page = client.get(path)
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text  # no inline script for the policy to block


def test_api_answers_are_never_sniffed(client: TestClient) -> None:
    answer = client.get("/v1/documents")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "same-origin"
    assert "content-security-policy" not in answer.headers


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ("javascript:alert(document.domain)", False),
        ("JavaScript:alert(1)", False),
        ("data:text/html,<b>x</b>", False),
        ("https://assistance.example/livebox", True),
    ],
)
def test_only_a_web_address_becomes_the_documents_link(
    client: TestClient, url: str, linked: bool
) -> None:
    markdown = f'---\ntitle: Guide Livebox\nurl: "{url}"\n---\n# Guide\n\nRedémarrez la box.\n'
    uploaded = client.post(
        "/v1/documents",
        files={"file": ("guide.md", io.BytesIO(markdown.encode()), "text/markdown")},
    )
    assert uploaded.status_code == 201, uploaded.text
    page = client.get(f"/documents/{uploaded.json()['documents'][0]['id']}")
    assert page.status_code == 200
    assert ("lien d'origine" in page.text) is linked
