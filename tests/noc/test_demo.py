"""The demo network behind ``allo demo``'s NOC console: simulated, learned, replayed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from allo.cli.app import app
from allo.config import Settings, load_settings
from allo.noc.demo import CAUSES, TYPES, seed
from allo.noc.store import SqlNocStore
from allo.testing.clock import ScriptedClock
from allo.web.app import create_app
from tests.noc.test_api import OPERATOR, OPERATOR_TOKEN

NOW = 1_800_000_000.0


def test_the_demo_network_is_learned_folded_and_seeded_once(settings: Settings) -> None:
    folder = settings.data_dir / "noc"
    network = seed(settings.resolved_database_url, folder, ScriptedClock(NOW))
    assert not network.skipped and network.alarms > 300
    assert 0 < network.incidents < network.alarms / 3  # cascades folded, not listed
    graph = json.loads((folder / "graph.json").read_text(encoding="utf-8"))
    learned = {(e["cause"], e["effect"]) for e in graph["edges"]}
    assert set(CAUSES) <= learned  # the operator's view of the network, found from alarms
    assert {t for edge in learned for t in edge} <= set(TYPES)
    assert (folder / "topology.json").is_file()
    again = seed(settings.resolved_database_url, folder, ScriptedClock(NOW + 60))
    assert again.skipped
    store = SqlNocStore(settings.resolved_database_url)
    assert store.counts("live")["alarms"] == network.alarms  # nothing sent twice
    store.close()

    secured = settings.model_copy(update={"noc_token": SecretStr(OPERATOR_TOKEN)})
    with TestClient(create_app(secured), headers=OPERATOR) as client:
        listed = client.get("/v1/incidents", params={"limit": 200}).json()
        assert listed["total"] == network.incidents
        biggest = max(listed["items"], key=lambda item: item["size"])
        detail = client.get(f"/v1/incidents/{biggest['id']}").json()
        assert detail["explanation"]["fr"] and detail["explanation"]["en"]
        assert all(m["raised_at"] <= NOW for m in detail["members"])  # all in the past


def test_allo_demo_seeds_the_console_and_gives_it_a_fresh_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ALLO_EMBEDDER", "fake")
    monkeypatch.setenv("ALLO_NOC_TOKEN", "to-be-removed")
    monkeypatch.delenv("ALLO_NOC_TOKEN")  # restored as absent after the test
    served: dict[str, object] = {}
    monkeypatch.setattr("uvicorn.run", lambda target, **options: served.update(options))
    result = CliRunner().invoke(app, ["demo", "--port", "8124"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "NOC demo:" in output and "http://127.0.0.1:8124/noc" in output
    token = os.environ["ALLO_NOC_TOKEN"]
    assert len(token) >= 16 and f"(token: {token})" in output and served["port"] == 8124
    store = SqlNocStore(load_settings().resolved_database_url)
    assert store.counts("live")["alarms"] > 300
    store.close()
