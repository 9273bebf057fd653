"""Each stage on a scripted timeline (injected clock, no sleep)."""

from __future__ import annotations

import numpy as np
import pytest

from allo.domain.alarms import Alarm, FoldReason
from allo.noc.causal import CausalEdge, CausalGraph
from allo.noc.pipeline import Flow, PipelineConfig, build_pipeline
from allo.noc.sources.base import InputReport
from allo.noc.stages.correlate import CausalCorrelation
from allo.noc.stages.dedup import Deduplicate, RecentIds
from allo.noc.stages.flapping import SuppressFlapping
from allo.noc.stages.inhibit import InhibitRule, TopologyInhibition
from allo.noc.stages.normalise import Normalise
from allo.noc.stages.transient import SuppressTransients
from allo.noc.topology import Topology
from allo.testing.clock import ScriptedClock
from tests.noc.helpers import alarm

CONFIG = PipelineConfig()
CHAIN = Topology([("0", "1"), ("1", "2"), ("2", "3"), ("3", "4")])


def flows(*alarms):  # type: ignore[no-untyped-def]
    return [Flow(a) for a in alarms]


def test_normalise_flags_bad_input_without_dropping() -> None:
    clock = ScriptedClock(start=10_000)
    report = InputReport()
    stage = Normalise(clock, CONFIG, report, CHAIN)
    batch = flows(
        alarm(0, "a", "0", 9_000),
        alarm(1, "a", "0", 9_500, cleared=9_400),
        alarm(2, "a", "9", 10_000 + 2 * 86_400),
        alarm(3, "a", "1", 8_000),
        alarm(4, "a", "1", float("nan")),
    )
    out = stage.process(batch)
    assert len(out) == 5
    assert report.counts == {
        "clear_before_raise": 1,
        "far_future": 1,
        "unknown_device": 1,
        "out_of_order": 1,
    }
    assert out[1].alarm.cleared_at is None
    assert out[4].alarm.raised_at == 9_500  # newest plausible time; the far-future one ignored
    clock.advance(3 * 86_400)
    assert Normalise(clock, CONFIG, InputReport()).process(flows(out[2].alarm))[0].issues == []


def test_deduplicate_repeats_and_ids() -> None:
    report = InputReport()
    stage = Deduplicate(CONFIG, report)
    out = stage.process(
        flows(
            alarm(0, "a", "d", 0, 0),
            alarm(1, "a", "d", 200, 200),
            alarm(2, "a", "d", 450, 450),
            alarm(3, "a", "d", 2000, 2000),
            alarm(4, "b", "d", 2000, alarm_id="row-3"),
        )
    )
    assert [f.reason for f in out] == [
        None,
        FoldReason.DUPLICATE,
        FoldReason.DUPLICATE,
        None,
        FoldReason.DUPLICATE,
    ]
    assert out[2].under is out[0] and out[4].under is out[3]
    assert report.counts["duplicate_id"] == 1


def test_recent_ids_remember_exactly_the_last_ones() -> None:
    ids = RecentIds(size=3)
    carried = {f"id-{i}": Flow(alarm(i, "a", "d", float(i))) for i in range(10)}
    for i, (alarm_id, flow) in enumerate(carried.items()):
        ids.add(alarm_id, flow)
        remembered = [k for k in carried if ids.get(k) is carried[k]]
        assert remembered == [f"id-{j}" for j in range(max(0, i - 2), i + 1)]
        assert len(ids) == min(i + 1, 3)
    assert ids.get("never-seen") is None
    ids.add("id-9", Flow(alarm(99, "a", "d", 99.0)))  # already remembered: kept as first
    assert ids.get("id-9") is carried["id-9"] and len(ids) == 3
    with pytest.raises(ValueError, match="at least one id"):
        RecentIds(size=0)


def test_a_repeated_id_beyond_the_memory_is_a_new_alarm() -> None:
    report = InputReport()
    stage = Deduplicate(CONFIG, report, id_memory=2)
    out = stage.process(
        flows(
            alarm(0, "a", "d0", 0, alarm_id="x"),
            alarm(1, "a", "d1", 10, alarm_id="y"),
            alarm(2, "a", "d2", 20, alarm_id="x"),  # among the last 2 ids: a duplicate
            alarm(3, "a", "d3", 30, alarm_id="z"),
            alarm(4, "a", "d4", 40, alarm_id="x"),  # y and z came since: forgotten
        )
    )
    assert [f.reason for f in out] == [None, None, FoldReason.DUPLICATE, None, None]
    assert report.counts["duplicate_id"] == 1


def test_flapping_after_three_raises() -> None:
    stage = SuppressFlapping(CONFIG)
    out = stage.process(
        flows(
            alarm(0, "a", "d", 0, 10),
            alarm(1, "a", "d", 400, 410),
            alarm(2, "a", "d", 800, 810),
            alarm(3, "a", "d", 5000, 5001),
        )
    )
    assert [f.reason for f in out] == [None, None, FoldReason.FLAPPING, None]
    assert out[2].under is out[0]


def test_transients_but_not_instant_events() -> None:
    out = SuppressTransients(CONFIG).process(
        flows(alarm(0, "a", "d", 0, 30), alarm(1, "a", "d", 0, 0), alarm(2, "a", "d", 0, 600))
    )
    assert [f.reason for f in out] == [FoldReason.TRANSIENT, None, None]


def test_inhibition_rule_on_neighbours() -> None:
    stage = TopologyInhibition([InhibitRule("link-down", "*", hops=1, seconds=60)], CHAIN)
    out = stage.process(
        flows(
            alarm(0, "link-down", "1", 0),
            alarm(1, "los", "2", 30),
            alarm(2, "los", "3", 30),
            alarm(3, "los", "0", 100),
        )
    )
    assert [f.reason for f in out] == [None, FoldReason.INHIBITED, None, None]


def test_pipeline_correlates_groups_and_promotes() -> None:
    graph = CausalGraph.from_matrix(np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]]), ["a", "b", "c"])
    pipeline = build_pipeline(ScriptedClock(1e9), topology=CHAIN, graph=graph)
    closed = pipeline.push([alarm(0, "a", "0", 0), alarm(1, "b", "1", 10)])
    assert closed == []
    closed = pipeline.push(
        [alarm(2, "a", "0", 3590), alarm(3, "b", "1", 3650), alarm(4, "c", "2", 3700)]
    )
    closed += pipeline.push([alarm(5, "c", "4", 9000)])
    closed += pipeline.flush()
    assert [(i.head.row, sorted(m.alarm.row for m in i.members)) for i in closed] == [
        (0, [1, 2]),
        (4, [3]),
        (5, []),
    ]
    first, second, _ = closed
    assert {m.alarm.row: m.reason for m in first.members} == {
        1: FoldReason.CAUSED,
        2: FoldReason.GROUPED,
    }  # 2: an hour later, same as the head
    # row 3 has its cause (row 2) in the first incident: row 4, a probable root, leads instead
    assert second.members[0].reason is FoldReason.CAUSED and second.members[0].folded_under is None
    assert "Cause probable" in second.evidence[0].fr and "Probable root" in second.evidence[0].en


def hawkes_graph() -> CausalGraph:
    """a -> b (one b per a, mostly on the same device), b's background 1e-3/s, decay 100 s."""
    edge = CausalEdge("a", "b", 50.0, 1.0, (0.009, 0.001))
    return CausalGraph(
        ("a", "b"),
        (edge,),
        parameters={"decay_seconds": 100.0, "window_seconds": 600.0, "simultaneous": 1.0},
        background={"a": 1e-4, "b": 1e-3},
        self_excitation={"a": (0.0, 0.0), "b": (0.002, 0.0)},
        excitations=(edge,),
    )


def test_posterior_folds_only_probable_effects() -> None:
    stage = CausalCorrelation(hawkes_graph(), CHAIN, CONFIG)
    out = stage.process(
        flows(
            alarm(0, "a", "0", 0),
            alarm(1, "b", "0", 10),  # 0.009 e^-0.1 against 0.001: caused (p ~ 0.8)
            alarm(2, "a", "2", 1000),
            alarm(3, "b", "2", 1250),  # the kernel has decayed: background wins, a root
            alarm(4, "b", "3", 1005),  # one hop away: 0.001 e^-0.05 against 0.001, a coin toss
            alarm(5, "a", "4", 5000),
            alarm(6, "b", "4", 5000),  # same second: caused
        )
    )
    assert out[1].cause is out[0] and 0.5 < out[1].cause_strength < 1
    assert out[3].cause is None
    assert out[4].cause is None  # p ~ 0.49: not more likely than not
    assert out[6].cause is out[5]
    strict = CausalCorrelation(hawkes_graph(), CHAIN, CONFIG, threshold=0.4)
    assert strict.process(flows(alarm(2, "a", "2", 1000), alarm(4, "b", "3", 1005)))[1].cause


def test_a_far_future_alarm_neither_causes_nor_makes_the_stage_forget() -> None:
    clock = ScriptedClock(start=10_000)
    pipeline = build_pipeline(clock, topology=CHAIN, graph=hawkes_graph())
    far = 10_000 + 2 * 86_400

    def active(row: int, kind: str, raised: float) -> Alarm:
        return Alarm(f"r{row}", "0", kind, raised, row=row)

    pipeline.push_flows([active(0, "a", 9_000), active(1, "a", far)])
    out, _ = pipeline.push_flows([active(2, "b", 9_010), active(3, "b", far + 5)])
    assert out[0].cause is not None and out[0].cause.alarm.row == 0  # "a" at 9,000 remembered
    assert out[1].cause is None  # far in the future: no cause named there either
    assert "raise time far in the future" in out[1].issues


def test_repeats_of_the_effect_lower_the_posterior() -> None:
    stage = CausalCorrelation(hawkes_graph(), CHAIN, CONFIG)
    out = stage.process(
        flows(
            *(alarm(i, "b", "0", 10 * i) for i in range(6)),
            alarm(6, "a", "0", 55),
            alarm(7, "b", "0", 60),
        )
    )
    assert out[7].cause is None  # the burst of b explains the last b better than the a


def test_expert_graph_without_model_names_any_cause() -> None:
    graph = CausalGraph.from_matrix(np.array([[0, 1], [0, 0]]), ["a", "b"])
    out = CausalCorrelation(graph, CHAIN, CONFIG).process(
        flows(alarm(0, "a", "2", 1000), alarm(1, "b", "2", 1250))
    )
    assert out[1].cause is out[0]
