"""``allo noc learn|replay`` and ``allo eval causal`` through Typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from allo.cli import noc
from allo.errors import InvalidInputError
from allo.noc.causal import CausalEdge, CausalGraph

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
    summary = json.loads(learned.output)
    assert summary["phases"].keys() == {"selection", "search"}
    assert sum(summary["phases"].values()) == pytest.approx(summary["seconds"], abs=0.01)
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


# -- files that cannot be used, outputs that cannot be written ------------------------------

PCIC = "alarm_id,device_id,start_timestamp,end_timestamp\n"


def _run(*args: str) -> tuple[int, str]:
    """Exit code and output, its lines joined (the console wraps long messages)."""
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_nothing_to_learn_is_a_clear_error_and_unreadable_rows_still_replay(
    tmp_path: Path,
) -> None:
    header_only, unreadable = tmp_path / "h.csv", tmp_path / "u.csv"
    header_only.write_text(PCIC, encoding="utf-8")
    unreadable.write_text(PCIC + "1,2,oops,3\n5,6,7\n", encoding="utf-8")
    for path in (header_only, unreadable):
        code, output = _run(
            "noc", "learn", "--alarms", str(path), "--out", str(tmp_path / "g.json")
        )
        assert code == 2 and "no usable alarm" in output
    incidents = tmp_path / "inc.jsonl"
    code, output = _run(
        "noc", "replay", str(unreadable), "--incidents-out", str(incidents), "--json"
    )
    assert code == 0, output
    summary = json.loads(output)
    assert summary["graph"].startswith("none") and summary["alarms"] == 2
    lines = [json.loads(line) for line in incidents.read_text(encoding="utf-8").splitlines()]
    assert sorted(row for i in lines for row in [i["head"], *i["members"]]) == [0, 1]


def test_outputs_are_checked_before_any_work(files: Path) -> None:
    alarms = files / "Alarm.csv"
    before = alarms.read_bytes()
    code, output = _run("noc", "learn", "--alarms", str(alarms), "--out", str(alarms))
    assert code == 2 and "also an input" in output
    assert alarms.read_bytes() == before
    missing = files / "nowhere" / "out.jsonl"
    code, output = _run("noc", "replay", str(alarms), "--incidents-out", str(missing))
    assert code == 2 and "does not exist" in output
    code, output = _run("noc", "report", str(alarms), "--out", str(alarms / "sub"))
    assert code == 2 and "report folder" in output


def test_an_error_message_is_printed_as_text_not_markup(files: Path, tmp_path: Path) -> None:
    topology = tmp_path / "t.json"
    topology.write_text('{"edges": [["[/b]"]]}', encoding="utf-8")
    code, output = _run("noc", "replay", str(files / "Alarm.csv"), "--topology", str(topology))
    assert code == 2 and "['[/b]'] is not a [source, target] pair" in output


def test_absurd_raise_times_are_left_out_of_learning_and_break_nothing(
    files: Path, tmp_path: Path
) -> None:
    alarms = tmp_path / "a.csv"
    rows = (files / "Alarm.csv").read_text(encoding="utf-8")
    alarms.write_text(rows + "1,2,1e308,\n0,1,-1e308,\n", encoding="utf-8")
    graph = tmp_path / "g.json"
    code, output = _run("noc", "learn", "--alarms", str(alarms), "--out", str(graph), "--json")
    assert code == 0, output
    assert json.loads(output)["input_problems"]["counts"]["not_learned_from"] == 1  # one entry
    json.loads(graph.read_text(encoding="utf-8"), parse_constant=pytest.fail)  # no NaN
    code, output = _run("noc", "report", str(alarms), "--graph", str(graph), "--out", str(tmp_path))
    assert code == 0, output


def test_an_unreadable_first_row_does_not_make_the_others_out_of_order(tmp_path: Path) -> None:
    alarms = tmp_path / "a.csv"
    alarms.write_text(PCIC + "1,2,oops,\n" + "".join(f"1,{i},{100 + i},\n" for i in range(50)))
    code, output = _run("noc", "replay", str(alarms), "--json")
    assert code == 0, output
    assert "out_of_order" not in json.loads(output)["input_problems"]["counts"]


def test_a_truth_that_does_not_name_every_type_is_refused(files: Path) -> None:
    small = files / "small_dag.npy"
    np.save(small, np.zeros((1, 1)))
    alarms = str(files / "Alarm.csv")
    code, output = _run("eval", "causal", "--alarms", alarms, "--truth", str(small))
    assert code == 2 and "names types 0-0" in output
    code, output = _run("noc", "replay", alarms, "--truth", str(small))
    assert code == 2 and "give the DAG" in output


@pytest.mark.parametrize(
    ("matrix", "says"),
    [
        (np.array([["no", "no"], ["no", "no"]]), "values"),
        (np.array([[0.0, np.nan], [1.0, 0.0]]), "NaN"),
        (np.zeros((2, 3)), "square"),
    ],
    ids=["text", "nan", "not-square"],
)
@pytest.mark.parametrize("option", ["--topology", "--graph", "--truth"])
def test_a_matrix_that_is_not_an_adjacency_matrix_is_refused(
    files: Path, matrix: np.ndarray, says: str, option: str
) -> None:
    path = files / "bad.npy"
    np.save(path, matrix)
    code, output = _run("noc", "replay", str(files / "Alarm.csv"), option, str(path))
    assert code == 2, output
    assert says in output


def test_an_archive_saved_as_npy_is_refused(files: Path) -> None:
    path = files / "archive.npy"
    with path.open("wb") as handle:
        np.savez(handle, a=np.eye(2))
    code, output = _run("noc", "replay", str(files / "Alarm.csv"), "--topology", str(path))
    assert code == 2 and "archive" in output


_MODEL = {
    "types": ["0", "1"],
    "edges": [{"cause": "0", "effect": "1", "strength": 5.0, "alphas": [0.01, 0.0]}],
    "parameters": {"decay_seconds": 300.0, "window_seconds": 1800.0},
    "background": {"0": 0.001, "1": 0.001},
    "self_excitation": {"0": [0.001, 0.0], "1": [0.001, 0.0]},
}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"edges": [{"cause": "0", "effect": "1", "alphas": [-0.5, 0.0]}]}, "negative"),
        ({"edges": [{"cause": "0", "effect": "1", "alphas": [1e308, 0.0]}]}, "not finite or over"),
        ({"background": {"0": "nan", "1": 0.001}}, "negative"),
        ({"parameters": {"decay_seconds": 0.0}}, "decay_seconds must be > 0"),
        ({"decays": [100.0, 1000.0, 10000.0]}, "groups of 3"),
        ({"background": [1]}, "cannot read"),
    ],
    ids=["negative", "overflowing", "nan", "no-decay", "heights", "wrong-shape"],
)
def test_a_graph_whose_model_is_unusable_is_refused(
    files: Path, change: dict[str, object], says: str
) -> None:
    path = files / "bad_model.json"
    path.write_text(json.dumps({**_MODEL, **change}), encoding="utf-8")
    good = files / "good_model.json"
    good.write_text(json.dumps(_MODEL), encoding="utf-8")
    alarms = str(files / "Alarm.csv")
    assert _run("noc", "replay", alarms, "--graph", str(good))[0] == 0
    code, output = _run("noc", "replay", alarms, "--graph", str(path))
    assert code == 2 and says in output


def test_a_graph_saved_as_npy_comes_back_with_its_types(files: Path, tmp_path: Path) -> None:
    graph = CausalGraph(("0", "1", "5"), (CausalEdge("5", "1", 3.0, 0.1),))
    graph.save(tmp_path / "g.npy")
    back = CausalGraph.load(tmp_path / "g.npy")
    assert [(e.cause, e.effect) for e in back.edges] == [("5", "1")]
    named = CausalGraph(("LOS", "LinkDown"), (CausalEdge("LOS", "LinkDown", 3.0, 0.1),))
    with pytest.raises(InvalidInputError, match=r"as \.json"):
        named.save(tmp_path / "named.npy")
    assert not (tmp_path / "named.npy").exists()
    code, output = _run(
        "noc", "replay", str(files / "Alarm.csv"), "--json", "--graph", _saved(named, tmp_path)
    )
    assert code == 0 and "graph_mismatch" in json.loads(output)["input_problems"]["counts"]


def _saved(graph: CausalGraph, folder: Path) -> str:
    path = folder / "named.json"
    graph.save(path)
    return str(path)


def test_an_expert_graph_with_a_cycle_is_replayed_and_the_cycle_reported(
    files: Path, tmp_path: Path
) -> None:
    both_ways = tmp_path / "expert.npy"
    np.save(both_ways, np.array([[0, 1], [1, 0]]))
    code, output = _run(
        "noc", "replay", str(files / "Alarm.csv"), "--graph", str(both_ways), "--json"
    )
    assert code == 0, output
    problems = json.loads(output)["input_problems"]
    assert problems["counts"]["graph_cycle"] == 1
    assert "expert.npy has a cycle" in problems["examples"]["graph_cycle"][0]
    code, output = _run("noc", "replay", str(files / "Alarm.csv"), "--json")
    assert "graph_cycle" not in json.loads(output)["input_problems"]["counts"]  # learned: none
