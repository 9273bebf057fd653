"""The optimised engine gives exactly what it gave before its speed-ups (see ``golden.py``)."""

from __future__ import annotations

import json

import pytest

from tests.noc.golden import GOLDEN, snapshot


@pytest.fixture(scope="module")
def now() -> dict[str, object]:
    return snapshot()


@pytest.fixture(scope="module")
def before() -> dict[str, object]:
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize(
    "case",
    [
        "model_topology",
        "model_topology_batch1",
        "model_no_topology",
        "expert_topology",
        "no_graph",
        "inhibit",
        "engine_batches",
        "engine_one_by_one",
    ],
)
def test_same_results_as_before_the_speed_ups(
    case: str, now: dict[str, object], before: dict[str, object]
) -> None:
    assert now[case] == before[case]
