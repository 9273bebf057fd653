"""Topology files and hop distances."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from allo.errors import InvalidInputError
from allo.noc.topology import Topology


def chain(n: int) -> np.ndarray:
    matrix = np.zeros((n, n), dtype=np.int64)
    for i in range(n - 1):
        matrix[i, i + 1] = matrix[i + 1, i] = 1
    return matrix


def test_npy_hops_ball_and_path(tmp_path: Path) -> None:
    path = tmp_path / "t.npy"
    np.save(path, chain(5))
    topology = Topology.load(path)
    assert len(topology) == 5 and topology.edge_count() == 4
    assert topology.hops("0", "3") == 3 and topology.hops("0", "4", limit=2) is None
    assert topology.ball("2", 1) == {"2": 0, "1": 1, "3": 1}
    assert topology.path("0", "2") == ["0", "1", "2"]
    assert topology.check_devices(["1", "9"]) == ["9"]


def test_csv_and_json_edge_lists(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("source,target\na,b\nb,c\nc,c\n", encoding="utf-8")
    topology = Topology.load(tmp_path / "t.csv")
    assert topology.hops("a", "c") == 2 and topology.warnings == ["1 self-loop(s) ignored"]
    (tmp_path / "t.json").write_text(
        json.dumps({"edges": [["a", "b"]], "adjacency": {"b": ["c"]}}), encoding="utf-8"
    )
    assert Topology.load(tmp_path / "t.json").neighbours("b") == {"a", "c"}


def test_bad_topologies(tmp_path: Path) -> None:
    np.save(tmp_path / "bad.npy", np.zeros((2, 3)))
    with pytest.raises(InvalidInputError, match="square"):
        Topology.load(tmp_path / "bad.npy")
    (tmp_path / "bad.json").write_text(json.dumps({"edges": [["a"]]}), encoding="utf-8")
    with pytest.raises(InvalidInputError, match="pair"):
        Topology.load(tmp_path / "bad.json")
    asym = np.zeros((2, 2))
    asym[0, 1] = 1
    assert "asymmetric" in Topology.from_matrix(asym).warnings[0]
