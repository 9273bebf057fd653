"""The multi-scale posterior: same verdicts as the correlation stage for one exponential,
fast pairs folded with a kernel that has a fast time constant."""

from __future__ import annotations

from dataclasses import replace

import pytest

from allo.domain.alarms import Alarm
from allo.noc.causal import CausalGraph, HawkesConfig, HawkesLearner
from allo.noc.causal_kernel import ScaledPosterior
from allo.noc.pipeline import Flow, PipelineConfig
from allo.noc.stages.correlate import CausalCorrelation
from tests.noc.test_causal import simulate, two_speed


def verdicts(stage: CausalCorrelation | ScaledPosterior, alarms: list[Alarm]) -> list[int | None]:
    """The row each alarm is folded under (``None``: a probable root), second by second."""
    flows = [Flow(a) for a in sorted(alarms, key=lambda a: a.raised_at)]
    start = 0
    while start < len(flows):
        end = start
        while end < len(flows) and flows[end].raised_at == flows[start].raised_at:
            end += 1
        stage.process(flows[start:end])
        start = end
    return [f.cause.alarm.row if f.cause is not None else None for f in flows]


def test_one_time_constant_gives_the_stage_verdicts() -> None:
    alarms = simulate(seed=4, devices=10, span=100_000.0)
    graph = HawkesLearner(HawkesConfig(decay_seconds=60.0, window_seconds=360.0, select=False))
    learned = graph.learn(alarms)
    config = PipelineConfig()
    expected = verdicts(CausalCorrelation(learned, None, config), alarms)
    scaled = ScaledPosterior(replace(learned, decays=(60.0,)), None, config, 0.5)
    got = verdicts(scaled, alarms)
    assert got == expected
    assert sum(v is not None for v in got) > len(alarms) / 4  # B and C alarms fold


def test_fast_pairs_fold_under_their_cause() -> None:
    alarms = two_speed(seed=9, devices=10)
    config = HawkesConfig(scales=(3.0, 600.0), select=False)
    graph = HawkesLearner(config).learn(alarms)
    assert graph.decays == (3.0, 600.0)
    rows = {a.row: a for a in alarms}
    got = verdicts(ScaledPosterior(graph, None, PipelineConfig(), 0.5), alarms)
    ordered = sorted(alarms, key=lambda a: a.raised_at)
    fast = [
        (a, cause)
        for a, cause in zip(ordered, got, strict=True)
        if a.alarm_type == "B" and cause is not None and a.raised_at - rows[cause].raised_at <= 3
    ]
    b_count = sum(a.alarm_type == "B" for a in alarms)
    assert len(fast) > 0.35 * b_count  # about half the B alarms follow their A within seconds
    assert all(rows[cause].alarm_type == "A" for _, cause in fast)
    a_folded = [c for a, c in zip(ordered, got, strict=True) if a.alarm_type == "A" and c]
    assert len(a_folded) < 0.1 * len(fast), len(a_folded)  # a cause rarely folds


def test_rejects_a_graph_without_its_kernel() -> None:
    graph = CausalGraph.from_matrix(__import__("numpy").eye(2, k=1))
    with pytest.raises(ValueError, match="decays"):
        ScaledPosterior(graph, None, PipelineConfig(), 0.5)
