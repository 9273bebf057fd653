"""``allo serve``: worker processes, and the chat assistant ready before the first request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from allo.assistant.session import Assistant
from allo.cli.app import app
from allo.cli.serve import app_factory

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ALLO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ALLO_EMBEDDER", "fake")
    return tmp_path


def test_serve_passes_workers_to_uvicorn(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda target, **options: seen.update(options, app=target))
    result = runner.invoke(app, ["serve", "--port", "8123", "--workers", "2", "--no-access-log"])
    assert result.exit_code == 0, result.output
    assert seen["app"] == "allo.cli.serve:app_factory" and seen["factory"] is True
    assert (seen["port"], seen["workers"], seen["access_log"]) == (8123, 2, False)


def test_workers_must_be_positive(env: Path) -> None:
    result = runner.invoke(app, ["serve", "--workers", "0"])
    assert result.exit_code == 2 and "workers" in result.output


def test_invalid_settings_stop_before_uvicorn(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLO_EMBEDDER", "no-such-embedder")
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("uvicorn must not start"))
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2 and "ALLO_EMBEDDER" in result.output


def test_app_factory_builds_the_assistant_before_any_request(env: Path) -> None:
    built = app_factory()
    assistant = built.state.assistant
    assert isinstance(assistant, Assistant)
    opened = assistant.open()  # usable at once: the classifier is trained
    assert assistant.history(opened.conversation_id, opened.customer_token)[1] == []
    assistant.close()
    built.state.knowledge.close()
