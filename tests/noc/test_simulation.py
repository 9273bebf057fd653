"""End to end on simulated alarms: when the data follow the learner's model, learning and
folding meet issue 5's root targets, with hundreds of alarm types if need be."""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from allo.clock import SystemClock
from allo.noc.causal import HawkesLearner
from allo.noc.evaluation import IncidentRows, edge_scores, judge
from allo.noc.pipeline import build_pipeline
from allo.noc.replay import replay
from allo.noc.simulation import random_dag, ring_topology, simulate


def test_simulated_history_is_ordered_and_follows_an_acyclic_graph() -> None:
    rng = np.random.default_rng(1)
    dag = random_dag(30, rng)
    assert not np.tril(dag).any()  # causes come before their effects: acyclic
    assert (dag.sum(axis=0) <= 2).all() and dag.sum() > 10
    alarms = simulate(dag, 10, 86_400.0, 20.0, rng)
    assert [a.row for a in alarms] == list(range(len(alarms)))
    assert all(a.raised_at <= b.raised_at for a, b in pairwise(alarms))
    assert {a.alarm_type for a in alarms} <= {str(k) for k in range(30)}
    assert 0.5 * 30 * 20 < len(alarms) < 2 * 30 * 20


def test_learned_graph_folds_the_cascades_and_keeps_the_roots() -> None:
    rng = np.random.default_rng(3)
    dag = random_dag(60, rng)
    topology = ring_topology(40)
    alarms = simulate(dag, 40, 20 * 86_400.0, 50.0, rng)
    graph = HawkesLearner().learn(alarms, topology)
    causal = edge_scores(graph.matrix([str(k) for k in range(60)]), dag)
    assert causal["recall"] >= 0.9  # the pairwise links find the simulated edges

    clock = SystemClock()
    result = replay(alarms, build_pipeline(clock, topology=topology, graph=graph), clock)
    verdict = judge(alarms, [IncidentRows.of(i) for i in result.incidents], dag, topology)
    assert verdict["rows_missing"] == verdict["rows_duplicated"] == 0
    assert verdict["incoherent_incidents"] == 0
    assert verdict["root_recall"] >= 0.99 and verdict["root_precision"] >= 0.95
    assert result.reduction > 0.3  # the cascades are folded, not listed one by one
