"""``allo noc learn|replay`` and ``allo eval causal`` through Typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from allo.cli import noc

app = typer.Typer()
app.add_typer(noc.app, name="noc")
evaluate = typer.Typer()
evaluate.command("causal")(noc.causal)
app.add_typer(evaluate, name="eval")
runner = CliRunner()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    lines = ["alarm_id,device_id,start_timestamp,end_timestamp"]
    t = 0
    for _ in range(300):
        t += int(rng.integers(1, 400))
        device = int(rng.integers(0, 4))
        lines.append(f"0,{device},{t},{t}")
        if rng.random() < 0.7:
            lines.append(f"1,{device},{t + 5},{t + 5}")
    lines.append("1,2,oops,3")
    (tmp_path / "Alarm.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    np.save(tmp_path / "DAG.npy", np.array([[0, 1], [0, 0]]))
    chain = np.zeros((4, 4), dtype=np.int64)
    for i in range(3):
        chain[i, i + 1] = chain[i + 1, i] = 1
    np.save(tmp_path / "Topology.npy", chain)
    return tmp_path


def test_learn_replay_and_eval(files: Path) -> None:
    alarms, topology, truth = (str(files / n) for n in ("Alarm.csv", "Topology.npy", "DAG.npy"))
    learned = runner.invoke(
        app,
        [
            "noc",
            "learn",
            "--alarms",
            alarms,
            "--topology",
            topology,
            "--out",
            str(files / "g.json"),
            "--json",
        ],
    )
    assert learned.exit_code == 0, learned.output
    graph = json.loads((files / "g.json").read_text())
    assert {(e["cause"], e["effect"]) for e in graph["edges"]} == {("0", "1")}

    out = files / "incidents.jsonl"
    replayed = runner.invoke(
        app,
        [
            "noc",
            "replay",
            alarms,
            "--topology",
            topology,
            "--graph",
            str(files / "g.json"),
            "--truth",
            truth,
            "--incidents-out",
            str(out),
            "--json",
        ],
    )
    assert replayed.exit_code == 0, replayed.output
    summary = json.loads(replayed.output)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    rows = sorted(r for line in lines for r in [line["head"], *line["members"]])
    assert rows == list(range(summary["alarms"]))
    assert summary["incidents"] == len(lines)
    assert summary["reduction"] == round(1 - len(lines) / summary["alarms"], 4)
    assert summary["input_problems"]["counts"] == {"malformed": 1}
    assert summary["incoherent_incidents"] == 0 and summary["root_recall"] == 1.0

    scored = runner.invoke(app, ["eval", "causal", "--alarms", alarms, "--truth", truth, "--json"])
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.output)["f1"] == 1.0


def test_bad_graph_file_is_a_clear_error(files: Path) -> None:
    (files / "g.json").write_text("{}", encoding="utf-8")
    result = runner.invoke(
        app, ["noc", "replay", str(files / "Alarm.csv"), "--graph", str(files / "g.json")]
    )
    assert result.exit_code == 2 and "cannot read causal graph" in result.output


def test_ingest_in_two_processes_or_one_when_the_topology_would_be_cut(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLO_DATA_DIR", str(files / "data"))
    monkeypatch.setenv("ALLO_EMBEDDER", "fake")
    alarms, topology = str(files / "Alarm.csv"), str(files / "Topology.npy")
    rows = len((files / "Alarm.csv").read_text().splitlines()) - 1
    # no topology: each device stands alone, so two processes (streams s.0 and s.1)
    split = runner.invoke(
        app, ["noc", "ingest", alarms, "--stream", "s", "--partitions", "2", "--json"]
    )
    assert split.exit_code == 0, split.output
    summary = json.loads(split.output)
    assert summary["streams"] == ["s.0", "s.1"] and min(summary["partitions"]["alarms"]) > 0
    assert summary["rows"] == summary["accepted"] == summary["stored"]["alarms"] == rows
    assert summary["input_problems"]["counts"]["malformed"] == 1  # read twice, counted once
    # a chain of four devices cannot be split without cutting a link: one process, said so
    one = runner.invoke(
        app,
        ["noc", "ingest", alarms, "--topology", topology, "--stream", "t", "--partitions", "2"],
    )
    assert one.exit_code == 0, one.output
    assert "would cut 1 of 3 topology links" in one.output
    assert f"stream t now holds {rows} alarms" in one.output
    paced = runner.invoke(app, ["noc", "ingest", alarms, "--partitions", "2", "--speed", "10"])
    assert paced.exit_code != 0 and "drop --speed" in paced.output


def test_ingest_again_with_another_split_is_refused_and_stores_nothing(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLO_DATA_DIR", str(files / "data"))
    monkeypatch.setenv("ALLO_EMBEDDER", "fake")
    alarms = str(files / "Alarm.csv")
    rows = len((files / "Alarm.csv").read_text().splitlines()) - 1
    first = runner.invoke(app, ["noc", "ingest", alarms, "--stream", "s", "--partitions", "2"])
    assert first.exit_code == 0, first.output
    for other in ("1", "3"):  # one process (stream s) or three regions (s.0, s.1, s.2)
        again = runner.invoke(
            app, ["noc", "ingest", alarms, "--stream", "s", "--partitions", other]
        )
        assert again.exit_code == 2, again.output
        assert "already holds alarms stored by another split" in again.output
        assert "--partitions" in again.output
    same = runner.invoke(
        app, ["noc", "ingest", alarms, "--stream", "s", "--partitions", "2", "--json"]
    )
    assert same.exit_code == 0, same.output
    summary = json.loads(same.output)
    assert summary["accepted"] == 0 and summary["already_stored"] == rows
    assert summary["stored"]["alarms"] == rows  # nothing stored twice by the refused runs
    # a stream whose name merely starts like the split's is not part of it
    other = runner.invoke(app, ["noc", "ingest", alarms, "--stream", "s.x"])
    assert other.exit_code == 0, other.output
