"""``allo noc report`` writes one self-contained HTML page with its four plots."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import typer
from typer.testing import CliRunner

from allo.cli import noc
from allo.noc.causal import CausalGraph
from allo.noc.report import stage_counts

app = typer.Typer()
app.add_typer(noc.app, name="noc")


def test_stage_counts_end_with_the_incidents() -> None:
    folded = Counter(duplicate=5, flapping=1, caused=2, grouped=1)
    steps = stage_counts(12, folded, 3)
    assert [n for _, n in steps] == [12, 7, 6, 6, 6, 4, 3]


def test_report_command_writes_html_with_plots(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    lines = ["alarm_id,device_id,start_timestamp,end_timestamp"]
    for t in np.sort(rng.integers(0, 40_000, 400)):
        lines.append(f"{rng.integers(0, 3)},{rng.integers(0, 5)},{t},{t}")
    lines.append("<script>,x,bad,row")
    alarms = tmp_path / "Alarm.csv"
    alarms.write_text("\n".join(lines) + "\n", encoding="utf-8")
    graph = tmp_path / "graph.json"
    CausalGraph.from_matrix(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])).save(graph)
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app, ["noc", "report", str(alarms), "--graph", str(graph), "--out", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["alarms"] == 401
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg") == 4
    for title in ("Alarmes et incidents par", "Réduction étape par étape", "Graphe causal appris"):
        assert title in page
    assert "<script>" not in page  # data is escaped
