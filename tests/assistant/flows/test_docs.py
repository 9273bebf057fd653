"""The examples of docs/tutorials.md run."""

from __future__ import annotations

import re
from pathlib import Path

from allo.assistant.flows import (
    ConnectorRegistry,
    EndOutput,
    HandoffOutput,
    ScriptedConnector,
    TutorialEngine,
    load_tutorial,
)

DOC = Path(__file__).parents[3] / "docs" / "tutorials.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_yaml_example_loads_and_runs(tmp_path: Path) -> None:
    path = tmp_path / "redemarrage.yaml"
    path.write_text(_blocks("yaml")[0], encoding="utf-8")
    tutorial = load_tutorial(path)
    check = ScriptedConnector("check_line_status", [{"status": "outage", "incident": "INC-1"}])
    engine = TutorialEngine({tutorial.id: tutorial}, ConnectorRegistry([check]))
    state, _ = engine.start("redemarrage")
    _, outputs = engine.advance(state, "oui")
    assert outputs[-1] == EndOutput(resolved=True, tutorial_id="redemarrage")
    state, _ = engine.start("redemarrage", {"phone_number": "+33123456789"})
    state, outputs = engine.advance(state, "non")
    assert outputs[0].text == "Un incident est en cours dans votre secteur (INC-1)."  # type: ignore[union-attr]
    assert check.calls == [{"line_id": "+33123456789"}]
    assert state.finished and not isinstance(outputs[-1], HandoffOutput)


def test_python_example_runs() -> None:
    exec(compile(_blocks("python")[0], str(DOC), "exec"), {})
