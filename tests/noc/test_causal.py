"""The causal learner recovers a known graph from a simulated Hawkes process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from allo.domain.alarms import Alarm
from allo.errors import InvalidInputError
from allo.noc.causal import CausalGraph, HawkesConfig, HawkesLearner
from allo.noc.evaluation import edge_scores
from allo.noc.topology import Topology


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
    for search in ("conditional", "forward"):
        other = HawkesLearner(HawkesConfig(search=search, select=False)).learn(alarms)
        assert {(e.cause, e.effect) for e in other.edges} == {("A", "B"), ("B", "C")}


def test_selection_by_heldout_likelihood_and_model_kept() -> None:
    alarms = simulate(seed=11)
    learner = HawkesLearner(HawkesConfig(decay_candidates=(60.0, 3000.0)))
    graph = learner.learn(alarms)
    assert len(learner.selection) == 4  # two kernels times two penalties, all scored
    best = max(learner.selection, key=lambda item: item[2])
    assert (graph.parameters["decay_seconds"],) == best[0] == (60.0,)  # the simulated delays
    assert graph.has_model and graph.background.keys() == {"A", "B", "C", "D"}
    ab = next(e for e in graph.edges if (e.cause, e.effect) == ("A", "B"))
    assert 0.5 < ab.excitation < 1.1  # 0.8 B per A in the simulation
    assert {(e.cause, e.effect) for e in graph.excitations} >= {("A", "B"), ("B", "C")}
    fixed = HawkesLearner(HawkesConfig(decay_seconds=60.0, window_seconds=360.0, select=False))
    assert fixed.heldout_loglik(alarms) == pytest.approx(best[2])


def test_topology_kernel_finds_a_cause_on_the_neighbour() -> None:
    rng = np.random.default_rng(5)
    topology = Topology([(str(d), str(d + 1)) for d in range(0, 20, 2)])
    events: list[tuple[float, str, str]] = []
    for d in range(0, 20, 2):
        for t in rng.uniform(0, 300_000, rng.poisson(150)):
            events.append((t, "A", str(d)))
            if rng.random() < 0.7:
                events.append((t + rng.exponential(30.0), "B", str(d + 1)))
        for dev in (d, d + 1):
            events.extend((t, "N", str(dev)) for t in rng.uniform(0, 300_000, rng.poisson(100)))
    events.sort()
    alarms = [Alarm(f"e{i}", d, k, round(t), row=i) for i, (t, k, d) in enumerate(events)]
    graph = HawkesLearner().learn(alarms, topology)
    assert {(e.cause, e.effect) for e in graph.edges} == {("A", "B")}
    edge = graph.edges[0]
    assert edge.alphas[1] > 10 * edge.alphas[0]  # the excitation crosses one hop


def test_graph_is_acyclic_and_round_trips(tmp_path: Path) -> None:
    graph = HawkesLearner().learn(simulate(seed=3))
    order = list(graph.types)
    matrix = graph.matrix(order)
    assert not (matrix * matrix.T).any()
    graph.save(tmp_path / "g.json")
    again = CausalGraph.load(tmp_path / "g.json")
    assert {(e.cause, e.effect) for e in again.edges} == {(e.cause, e.effect) for e in graph.edges}
    assert again.has_model and again.background.keys() == graph.background.keys()
    # a learned graph asks the correlation stage to order same-second 2-cycles
    assert again.parameters["ordered_same_second"] == graph.parameters["ordered_same_second"] == 1
    assert len(again.excitations) == len(graph.excitations)
    assert all(e.alphas for e in again.edges)
    # a bare matrix keeps no type names: A, B, C are refused rather than renumbered
    with pytest.raises(InvalidInputError, match=r"write the graph as \.json"):
        graph.save(tmp_path / "g.npy")
    assert not (tmp_path / "g.npy").exists()


def test_edge_scores() -> None:
    truth = np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    predicted = np.array([[0, 1, 0], [0, 0, 0], [0, 1, 0]])
    scores = edge_scores(predicted, truth)
    assert scores["precision"] == 0.5 and scores["recall"] == round(1 / 3, 4)
    assert scores["f1"] == 0.4


def two_speed(seed: int = 5, devices: int = 20, span: float = 200_000.0) -> list[Alarm]:
    """A -> B within a second or two half the time, after about ten minutes otherwise."""
    rng = np.random.default_rng(seed)
    events: list[tuple[float, str, str]] = []
    for device in range(devices):
        name = str(device)
        for t in rng.uniform(0, span, rng.poisson(span / 2000)):
            events.append((float(t), "A", name))
            if rng.random() < 0.8:
                delay = rng.exponential(1.0) if rng.random() < 0.5 else rng.exponential(600.0)
                events.append((float(t) + delay, "B", name))
        events.extend((float(t), "N", name) for t in rng.uniform(0, span, rng.poisson(80)))
    events.sort()
    return [Alarm(f"e{i}", d, k, round(t), row=i) for i, (t, k, d) in enumerate(events)]


def test_kernel_features_interleave_the_time_constants() -> None:
    from allo.noc import causal_fit as fit
    from allo.noc.causal import _events

    events, _ = _events(simulate(seed=2, devices=3, span=20_000.0), None)
    one = fit.features(events, 60.0, 360.0, True).toarray()
    assert np.array_equal(fit.kernel_features(events, ((60.0, 360.0),), True).toarray(), one)
    both = fit.kernel_features(events, ((5.0, 30.0), (60.0, 360.0)), True).toarray()
    short = fit.features(events, 5.0, 30.0, True).toarray()
    assert both.shape == (len(events.times), 2 * events.n_types)
    assert np.array_equal(both[:, 0::2], short) and np.array_equal(both[:, 1::2], one)
    comp = fit.kernel_compensator(events, ((5.0, 30.0), (60.0, 360.0)), 0.0, 20_000.0)
    assert comp[1::2] == pytest.approx(fit.compensator(events, 60.0, 360.0, 0.0, 20_000.0))
    assert (comp[0::2] < comp[1::2]).all()  # a shorter kernel holds less mass per alarm


def test_held_out_selection_prefers_two_time_constants_for_two_speeds(tmp_path: Path) -> None:
    alarms = two_speed()
    config = HawkesConfig(decay_candidates=(3.0, 600.0), scale_candidates=((3.0, 600.0),))
    learner = HawkesLearner(config)
    graph = learner.learn(alarms)
    scores = {decays: score for decays, _, score in learner.selection}
    assert scores[(3.0, 600.0)] > max(scores[(3.0,)], scores[(600.0,)])
    assert graph.decays == (3.0, 600.0) and graph.parameters["kernel_scales"] == 2
    ab = next(e for e in graph.excitations if (e.cause, e.effect) == ("A", "B"))
    assert len(ab.alphas) == 2  # one height per time constant (no topology: one hop)
    assert ab.alphas[0] > 10 * ab.alphas[1]  # the fast half rises far higher
    assert 0.5 < ab.excitation < 1.1  # 0.8 B per A in all
    assert not any("N" in (e.cause, e.effect) for e in graph.edges)
    graph.save(tmp_path / "g.json")
    raw = json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))
    # an engine that predates multi-scale kernels finds no heights where it looks for them
    assert not any("alphas" in e for e in raw["excitations"] + raw["edges"])
    assert "self_excitation" not in raw and raw["self_kernel_heights"]["B"]
    again = CausalGraph.load(tmp_path / "g.json")
    assert again.decays == graph.decays
    assert again.self_excitation == {
        t: tuple(float(f"{a:.6g}") for a in v) for t, v in graph.self_excitation.items()
    }
    assert [e.alphas for e in again.excitations] == [
        tuple(float(f"{a:.6g}") for a in e.alphas) for e in graph.excitations
    ]


def test_sparse_sums_equal_dense_sums_whatever_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large feature matrices are summed sparsely, pool by pool: same values, to the bit."""
    from allo.noc import causal_fit as fit
    from allo.noc.causal import _events

    topology = Topology([(str(d), str(d + 1)) for d in range(2)])
    events, _ = _events(simulate(seed=3, devices=3, span=50_000.0), topology)
    dense = fit.features(events, 60.0, 360.0, True).toarray()
    monkeypatch.setattr(fit, "_DENSE_CELLS", 0)
    monkeypatch.setattr(fit, "_POOL", 50)  # many pools, the same cells met in several
    summed = fit.features(events, 60.0, 360.0, True)
    assert summed.nnz == np.count_nonzero(dense) > 100
    assert np.array_equal(summed.toarray(), dense)
    three = [Alarm("a", "r1", "A", 100.0, row=0), Alarm("b", "r1", "B", 100.0, row=1)]
    three.append(Alarm("c", "r1", "B", 200.0, row=2))
    alone, _ = _events(three, None)
    silent = fit.features(alone, 60.0, 360.0, True, same_second_weight=0.0)
    # the same-second pair weighs nothing: no stored zero may say a cause was seen
    assert silent.nnz == 2 and (silent.data > 0).all()


def test_a_cycle_is_found_and_named() -> None:
    loop = CausalGraph.from_matrix(
        np.array([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    )
    assert loop.cycle() in (["0", "1", "2", "0"], ["1", "2", "0", "1"], ["2", "0", "1", "2"])
    warning = loop.cycle_warning("expert.npy")
    assert warning is not None and warning.startswith("expert.npy has a cycle (")
    chain = CausalGraph.from_matrix(np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]]))
    assert chain.cycle() is None and chain.cycle_warning("g") is None
    both = CausalGraph.from_matrix(np.array([[0, 1], [1, 0]]))
    assert both.cycle() in (["0", "1", "0"], ["1", "0", "1"])
    assert CausalGraph.from_matrix(np.array([[1, 1], [0, 0]])).cycle() is None  # a repeat
