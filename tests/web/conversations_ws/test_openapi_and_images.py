"""The sockets are discoverable in /openapi.json; tutorial images are served safely."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from allo.web.routers.conversations import image_file, image_url


def test_openapi_documents_both_sockets(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    customer = paths["/v1/conversations/{conversation_id}/ws"]["get"]
    advisor = paths["/v1/advisor/ws"]["get"]
    for operation in (customer, advisor):
        assert "101" in operation["responses"] and "426" in operation["responses"]
        assert "WebSocket" in operation["description"]
    spec = customer["x-websocket"]
    sent = {v["properties"]["type"]["const"] for v in spec["client_frames"]["oneOf"]}
    got = {v["properties"]["type"]["const"] for v in spec["server_frames"]["oneOf"]}
    assert sent == {"auth", "message", "ping"}
    assert got == {"ready", "turn", "status", "typing", "ack", "error", "pong"}
    assert "$ref" not in str(spec)  # self-contained: no reference outside the extension
    advisor_sent = advisor["x-websocket"]["client_frames"]["oneOf"]
    assert {"auth", "typing", "ping"} <= {
        v["properties"]["type"].get("const") for v in advisor_sent
    }


def test_a_plain_get_on_a_socket_path_says_upgrade(client: TestClient) -> None:
    response = client.get("/v1/advisor/ws")
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"
    assert response.json()["error"]["type"] == "UpgradeRequired"


@pytest.mark.parametrize(
    "name",
    [
        "../installation_livebox.yaml",
        "..%2Finstallation_livebox.yaml",
        "%2e%2e%2finstallation_livebox.yaml",
        "installation_livebox.yaml",
        "livebox-6-etiquette.svg.yaml",
        ".hidden.svg",
        "absent.png",
        "%2Fetc%2Fpasswd",
    ],
)
def test_only_files_of_the_images_folder_are_served(client: TestClient, name: str) -> None:
    response = client.get(f"/v1/tutorial-images/{name}")
    assert response.status_code == 404
    assert response.json()["error"]["message"]  # a JSON error, never the file
    assert "steps:" not in response.text and "root:" not in response.text


def test_image_names_and_urls() -> None:
    assert image_file("livebox-6-etiquette.svg") is not None
    for bad in ("../facture.yaml", "images/livebox-6-etiquette.svg", "", "a" * 200 + ".svg"):
        assert image_file(bad) is None
    assert (
        image_url("images/livebox-6-etiquette.svg") == "/v1/tutorial-images/livebox-6-etiquette.svg"
    )
    for bad in (
        "livebox-6-etiquette.svg",
        "images/../facture.yaml",
        "other/livebox-6-etiquette.svg",
    ):
        assert image_url(bad) is None
