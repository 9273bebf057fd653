"""``allo serve``: worker processes, and the chat assistant ready before the first request."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from allo.assistant.session import Assistant
from allo.cli.app import app
from allo.cli.serve import SWITCH_INTERVAL, THREADS_VARIABLE, app_factory, worker_threads

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ALLO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ALLO_EMBEDDER", "fake")
    return tmp_path


def _unset(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Unset ``name`` for this test, whatever the test sets it to is undone afterwards."""
    monkeypatch.setenv(name, "recorded")  # records the value to restore
    monkeypatch.delenv(name)


def test_serve_passes_workers_to_uvicorn(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    _unset(monkeypatch, THREADS_VARIABLE)
    monkeypatch.setattr(
        "uvicorn.run",
        lambda target, **options: seen.update(
            options, app=target, threads=os.environ.get(THREADS_VARIABLE)
        ),
    )
    result = runner.invoke(app, ["serve", "--port", "8123", "--workers", "2", "--no-access-log"])
    assert result.exit_code == 0, result.output
    assert seen["app"] == "allo.cli.serve:app_factory" and seen["factory"] is True
    assert (seen["port"], seen["workers"], seen["access_log"]) == (8123, 2, False)
    # the workers inherit their share of the cores for ONNX Runtime
    assert seen["threads"] == str(worker_threads(2))
    assert "NOC engine runs in one worker only" in " ".join(result.output.split())


def test_an_operators_onnx_threads_win(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setenv(THREADS_VARIABLE, "3")
    monkeypatch.setattr(
        "uvicorn.run", lambda target, **options: seen.update(threads=os.environ[THREADS_VARIABLE])
    )
    assert runner.invoke(app, ["serve", "--workers", "2"]).exit_code == 0
    assert seen["threads"] == "3"


def test_one_worker_leaves_onnx_threads_alone(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    _unset(monkeypatch, THREADS_VARIABLE)
    monkeypatch.setattr(
        "uvicorn.run",
        lambda target, **options: seen.update(threads=os.environ.get(THREADS_VARIABLE)),
    )
    assert runner.invoke(app, ["serve"]).exit_code == 0
    assert seen["threads"] is None


def test_worker_threads_share_the_cores() -> None:
    assert [worker_threads(n, cores=2) for n in (1, 2, 3)] == [2, 1, 1]
    assert [worker_threads(n, cores=16) for n in (1, 2, 4, 32)] == [16, 8, 4, 1]


def test_workers_must_be_positive(env: Path) -> None:
    result = runner.invoke(app, ["serve", "--workers", "0"])
    assert result.exit_code == 2 and "workers" in result.output


def test_invalid_settings_stop_before_uvicorn(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLO_EMBEDDER", "no-such-embedder")
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("uvicorn must not start"))
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2 and "ALLO_EMBEDDER" in result.output


def test_app_factory_builds_the_assistant_before_any_request(env: Path) -> None:
    interval = sys.getswitchinterval()
    try:
        built = app_factory()
        # what start-up loaded is out of the collector's sight; GIL hand-offs are short
        assert gc.get_freeze_count() > 0
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    finally:
        gc.unfreeze()  # the rest of the test session keeps its usual collector
        sys.setswitchinterval(interval)
    assistant = built.state.assistant
    assert isinstance(assistant, Assistant)
    opened = assistant.open()  # usable at once: the classifier is trained
    assert assistant.history(opened.conversation_id, opened.customer_token)[1] == []
    assistant.close()
    built.state.knowledge.close()
