"""Same-second pairs linked both ways: the correlation stage folds them one way only.

Sources stamp alarms to the second. When the fitted model links two types both ways (a
2-cycle) and their alarms share a second, weighing both directions folds each alarm under
the other and the alarm that came first is lost. A learned graph carries
``ordered_same_second``: the pair then keeps the direction with the larger excitation per
cause alarm at that hop (see ``CausalCorrelation._first``).
"""

from __future__ import annotations

from dataclasses import replace

from allo.domain.alarms import FoldReason
from allo.noc.causal import CausalEdge, CausalGraph
from allo.noc.pipeline import Flow, PipelineConfig, build_pipeline
from allo.noc.stages.correlate import CausalCorrelation
from allo.noc.topology import Topology
from allo.testing.clock import ScriptedClock
from tests.noc.helpers import alarm

CONFIG = PipelineConfig()
PAIR = Topology([("0", "1")])


def cycle_graph(
    forward: tuple[float, ...] = (0.02, 0.001),
    backward: tuple[float, ...] = (0.005, 0.004),
    *,
    ordered: bool = True,
) -> CausalGraph:
    """``a -> b`` and ``b -> a`` (heights per hop: same device, adjacent), decay 100 s."""
    ab = CausalEdge("a", "b", 40.0, sum(forward) * 100, forward)
    ba = CausalEdge("b", "a", 40.0, sum(backward) * 100, backward)
    parameters = {"decay_seconds": 100.0, "window_seconds": 600.0, "simultaneous": 1.0}
    if ordered:
        parameters["ordered_same_second"] = 1.0
    return CausalGraph(
        ("a", "b"),
        (ab,),
        parameters=parameters,
        background={"a": 1e-4, "b": 1e-4},
        self_excitation={"a": (0.0, 0.0), "b": (0.0, 0.0)},
        excitations=(ab, ba),
    )


def correlate(graph: CausalGraph, *alarms: object) -> list[Flow]:
    stage = CausalCorrelation(graph, PAIR, CONFIG)
    return stage.process([Flow(a) for a in alarms])  # type: ignore[arg-type]


def test_same_second_pair_folds_the_weaker_direction_only() -> None:
    out = correlate(cycle_graph(), alarm(0, "a", "0", 1000), alarm(1, "b", "0", 1000))
    assert out[1].cause is out[0]  # a -> b is the stronger direction on the same device
    assert out[0].cause is None  # a stays a probable root
    # without the parameter (an older graph) each is folded under the other: the cycle
    old = correlate(cycle_graph(ordered=False), alarm(0, "a", "0", 1000), alarm(1, "b", "0", 1000))
    assert old[1].cause is old[0] and old[0].cause is old[1]


def test_the_order_is_kept_per_hop() -> None:
    # on adjacent devices b -> a is the stronger direction (0.004 against 0.001)
    out = correlate(cycle_graph(), alarm(0, "a", "0", 1000), alarm(1, "b", "1", 1000))
    assert out[0].cause is out[1] and out[0].cause_hops == 1
    assert out[1].cause is None


def test_an_earlier_second_still_counts_both_ways() -> None:
    # the order is observed: b one second before a may cause it, though b -> a is weaker
    out = correlate(cycle_graph(), alarm(0, "b", "0", 1000), alarm(1, "a", "0", 1001))
    assert out[1].cause is out[0]
    assert out[0].cause is None


def test_a_tie_keeps_both_directions() -> None:
    graph = cycle_graph(forward=(0.01, 0.0), backward=(0.01, 0.0))
    out = correlate(graph, alarm(0, "a", "0", 1000), alarm(1, "b", "0", 1000))
    assert out[0].cause is out[1] and out[1].cause is out[0]


def test_out_of_order_track_gives_the_same_answer() -> None:
    """A track that received an alarm out of order is scanned one alarm at a time (the slow
    path); it must apply the same rule as the running sums."""
    in_order = correlate(
        cycle_graph(),
        alarm(0, "b", "0", 995),
        alarm(1, "b", "0", 1000),
        alarm(2, "a", "0", 1000),
    )
    shuffled = correlate(
        cycle_graph(),
        alarm(1, "b", "0", 1000),
        alarm(0, "b", "0", 995),  # the b track turns slow here
        alarm(2, "a", "0", 1000),
    )
    for out in (in_order, shuffled):
        by_row = {f.alarm.row: f for f in out}
        # the same-second b does not count for a; the b five seconds earlier does
        assert by_row[2].cause is by_row[0]
        assert by_row[1].cause is by_row[2]  # a -> b at the same second
    assert in_order[2].cause_strength == shuffled[2].cause_strength


def test_replay_names_the_first_alarm_as_the_incident_root() -> None:
    clock = ScriptedClock(start=10_000)
    pipeline = build_pipeline(clock, topology=PAIR, graph=cycle_graph())
    incidents = pipeline.push([alarm(0, "b", "0", 1000), alarm(1, "a", "0", 1000)])
    incidents += pipeline.flush()
    assert len(incidents) == 1
    incident = incidents[0]
    assert incident.head.row == 1  # a, whatever the order in the batch
    assert [(m.alarm.row, m.reason) for m in incident.members] == [(0, FoldReason.CAUSED)]


def test_without_simultaneity_the_parameter_changes_nothing() -> None:
    graph = cycle_graph()
    graph = replace(graph, parameters={**graph.parameters, "simultaneous": 0.0})
    out = correlate(graph, alarm(0, "a", "0", 1000), alarm(1, "b", "0", 1000))
    assert out[0].cause is None and out[1].cause is None
