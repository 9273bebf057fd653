"""Replay invariants and the judging figures on a case computed by hand."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from allo.noc.causal import CausalGraph
from allo.noc.evaluation import IncidentRows, judge, root_alarms
from allo.noc.incidents import incident_json
from allo.noc.pipeline import build_pipeline
from allo.noc.replay import batches, replay
from allo.noc.topology import Topology
from allo.testing.clock import ScriptedClock
from tests.noc.helpers import alarm

CHAIN = Topology([("0", "1"), ("1", "2"), ("2", "3")])
TRUTH = np.array([[0, 1], [0, 0]])  # type 0 causes type 1
ALARMS = [
    alarm(0, "0", "0", 0),  # root
    alarm(1, "1", "1", 10),  # caused by row 0 (adjacent device)
    alarm(2, "1", "0", 20),  # caused by row 0 (same device)
    alarm(3, "0", "0", 100),  # type 0 has no parent: a root, same type/device as row 0
    alarm(4, "1", "3", 50),  # 3 hops from device 0, no cause near it: a root
    alarm(5, "0", "0", 5000),  # more than an hour later: a root
]


def run(graph: CausalGraph | None):  # type: ignore[no-untyped-def]
    clock = ScriptedClock(1e9)
    return replay(ALARMS, build_pipeline(clock, topology=CHAIN, graph=graph), clock, batch_size=2)


def test_roots_by_hand() -> None:
    assert root_alarms(ALARMS, TRUTH, CHAIN).tolist() == [True, False, False, True, True, True]


def test_replay_with_the_right_graph() -> None:
    result = run(CausalGraph.from_matrix(TRUTH))
    rows = [IncidentRows.of(i) for i in result.incidents]
    assert sorted((r.head, sorted(r.members)) for r in rows) == [(0, [1, 2, 3]), (4, []), (5, [])]
    assert result.reduction == 0.5  # 1 - 3 / 6
    scores = judge(ALARMS, rows, TRUTH, CHAIN)
    assert scores["root_recall"] == 1.0 and scores["root_precision"] == 1.0
    assert scores["incoherent_incidents"] == 0 and scores["rows_missing"] == 0


def test_replay_without_graph_lists_every_new_key_as_root() -> None:
    rows = [IncidentRows.of(i) for i in run(None).incidents]
    first = next(r for r in rows if r.head == 0)
    assert sorted(first.roots) == [1, 2]  # row 3 repeats the head's type and device
    scores = judge(ALARMS, rows, TRUTH, CHAIN)
    # leaders 0, 1, 2, 4, 5 of which 0, 4, 5 are roots
    assert scores["root_precision"] == 0.6 and scores["root_recall"] == 1.0


def test_every_row_in_exactly_one_incident_and_json_lines() -> None:
    rng = np.random.default_rng(1)
    many = [
        alarm(i, str(rng.integers(0, 4)), str(rng.integers(0, 4)), float(t))
        for i, t in enumerate(np.sort(rng.integers(0, 20_000, 500)))
    ]
    clock = ScriptedClock(1e9)
    result = replay(many, build_pipeline(clock, topology=CHAIN), clock, batch_size=50)
    lines = [json.loads(json.dumps(incident_json(i))) for i in result.incidents]
    counted = Counter(row for line in lines for row in [line["head"], *line["members"]])
    assert sorted(counted) == list(range(500)) and set(counted.values()) == {1}
    assert all(set(line["roots"]) <= {line["head"], *line["members"]} for line in lines)
    scores = judge(many, [IncidentRows.of(i) for i in result.incidents], TRUTH, CHAIN)
    assert scores["incoherent_incidents"] == 0


def test_paced_replay_sleeps_on_the_scripted_clock() -> None:
    clock = ScriptedClock(1000.0)
    result = replay(ALARMS[:3], build_pipeline(clock), clock, speed=10)
    assert result.alarms == 3 and clock.slept == 2.0  # 20 s of event time at 10x


def test_batches_never_split_a_second() -> None:
    same = [alarm(i, "a", "d", 5) for i in range(4)] + [alarm(4, "a", "d", 6)]
    assert [len(b) for b in batches(same, 2)] == [4, 1]
