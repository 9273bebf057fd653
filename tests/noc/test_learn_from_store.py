"""``allo noc learn --from-store``: the graph learned from what the engine stored is the
graph learned from the file that was ingested."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from allo.cli.app import app
from allo.domain.alarms import Alarm
from allo.noc.simulation import random_dag, simulate

runner = CliRunner()


def _write(path: Path, alarms: list[Alarm]) -> None:
    lines = ["alarm_id,device_id,start_timestamp,end_timestamp"]
    lines += [f"{a.alarm_type},{a.device},{int(a.raised_at)},{int(a.raised_at)}" for a in alarms]
    lines.append("not,a,valid,row")  # an unreadable row: stored as a stand-in, never learned
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ALLO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ALLO_EMBEDDER", "fake")
    rng = np.random.default_rng(8)
    alarms = simulate(random_dag(8, rng), 6, 10 * 86_400.0, 150.0, rng)
    path = tmp_path / "Alarm.csv"
    _write(path, alarms)
    return path


def _learn(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["noc", "learn", *args, "--json"])
    assert result.exit_code == 0, result.output
    summary: dict[str, object] = json.loads(result.output)
    return summary


def _edges(path: Path) -> set[tuple[str, str]]:
    return {(e["cause"], e["effect"]) for e in json.loads(path.read_text())["edges"]}


def test_the_store_gives_the_graph_of_the_ingested_file(history: Path, tmp_path: Path) -> None:
    ingested = runner.invoke(app, ["noc", "ingest", str(history), "--stream", "north"])
    assert ingested.exit_code == 0, ingested.output
    from_file = _learn("--alarms", str(history), "--out", str(tmp_path / "file.json"))
    stored = _learn("--from-store", "--out", str(tmp_path / "store.json"))
    assert stored["learned_from"] == "store"
    assert stored["alarms"] == from_file["alarms"] - 1  # the stand-in is not stored as history
    assert _edges(tmp_path / "store.json") == _edges(tmp_path / "file.json") != set()

    recent = _learn("--from-store", "--days", "3", "--out", str(tmp_path / "recent.json"))
    assert (
        0.2 * int(str(stored["alarms"]))
        < int(str(recent["alarms"]))
        < 0.4 * int(str(stored["alarms"]))
    )
    mine = _learn("--from-store", "--stream", "north", "--out", str(tmp_path / "north.json"))
    assert mine["alarms"] == stored["alarms"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to learn from: give --alarms FILE or --from-store"),
        (["--from-store", "--alarms", "ALARMS"], "not both"),
        (["--alarms", "ALARMS", "--days", "3"], "add --from-store"),
        (["--from-store", "--stream", "south"], "no alarm of stream 'south'"),
        (["--from-store"], "the store holds no alarm to learn from"),
    ],
)
def test_a_wrong_source_is_a_clear_error_and_writes_nothing(
    history: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    if "south" in args:
        runner.invoke(app, ["noc", "ingest", str(history), "--stream", "north"])
    out = tmp_path / "g.json"
    args = [str(history) if a == "ALARMS" else a for a in args]
    result = runner.invoke(app, ["noc", "learn", *args, "--out", str(out)])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not out.exists()
