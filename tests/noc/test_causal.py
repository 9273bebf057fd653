"""The causal learner recovers a known graph from a simulated Hawkes process."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from allo.domain.alarms import Alarm
from allo.noc.causal import CausalGraph, HawkesConfig, HawkesLearner
from allo.noc.evaluation import edge_scores


def simulate(seed: int = 7, devices: int = 20, span: float = 200_000.0) -> list[Alarm]:
    """A -> B -> C on the same device (probability 0.8, mean delay 60 s); D on its own."""
    rng = np.random.default_rng(seed)
    events: list[tuple[float, str, str]] = []
    for device in range(devices):
        name = str(device)
        for kind, rate in (("A", 1 / 2000), ("D", 1 / 1500)):
            count = rng.poisson(rate * span)
            events.extend((float(t), kind, name) for t in rng.uniform(0, span, count))
        for t in [t for t, k, d in events if k == "A" and d == name]:
            if rng.random() < 0.8:
                tb = t + rng.exponential(60.0)
                events.append((tb, "B", name))
                if rng.random() < 0.8:
                    events.append((tb + rng.exponential(60.0), "C", name))
    events.sort()
    return [Alarm(f"e{i}", d, k, round(t), row=i) for i, (t, k, d) in enumerate(events)]


def test_recovers_chain_and_ignores_noise() -> None:
    alarms = simulate()
    graph = HawkesLearner().learn(alarms)
    edges = {(e.cause, e.effect) for e in graph.edges}
    assert {("A", "B"), ("B", "C")} <= edges
    assert not any("D" in edge for edge in edges)
    conditional = HawkesLearner(HawkesConfig(pairwise=False)).learn(alarms)
    assert {(e.cause, e.effect) for e in conditional.edges} == {("A", "B"), ("B", "C")}


def test_graph_is_acyclic_and_round_trips(tmp_path: Path) -> None:
    graph = HawkesLearner().learn(simulate(seed=3))
    order = list(graph.types)
    matrix = graph.matrix(order)
    assert not (matrix * matrix.T).any()
    graph.save(tmp_path / "g.json")
    again = CausalGraph.load(tmp_path / "g.json")
    assert {(e.cause, e.effect) for e in again.edges} == {(e.cause, e.effect) for e in graph.edges}
    graph.save(tmp_path / "g.npy")
    assert CausalGraph.load(tmp_path / "g.npy").edges


def test_edge_scores() -> None:
    truth = np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    predicted = np.array([[0, 1, 0], [0, 0, 0], [0, 1, 0]])
    scores = edge_scores(predicted, truth)
    assert scores["precision"] == 0.5 and scores["recall"] == round(1 / 3, 4)
    assert scores["f1"] == 0.4
