"""Regions of the topology: whole components when they fit, balanced, few links cut."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allo.errors import InvalidInputError
from allo.noc.broker.partition import Partitioning, hash_partition, partition_topology
from allo.noc.topology import Topology

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / "alarms"


def chains(count: int, length: int) -> list[tuple[str, str]]:
    """``count`` separate chains of ``length`` devices: c0-0 ... c0-4, c1-0 ..."""
    return [(f"c{c}-{i}", f"c{c}-{i + 1}") for c in range(count) for i in range(length - 1)]


def grid(side: int) -> list[tuple[str, str]]:
    edges = []
    for r in range(side):
        for c in range(side):
            if c + 1 < side:
                edges.append((f"{r}.{c}", f"{r}.{c + 1}"))
            if r + 1 < side:
                edges.append((f"{r}.{c}", f"{r + 1}.{c}"))
    return edges


def hashed(topology: Topology, partitions: int) -> Partitioning:
    return Partitioning(partitions, {d: hash_partition(d, partitions) for d in topology.devices})


def test_components_that_fit_stay_whole() -> None:
    topology = Topology(chains(4, 5))
    split = partition_topology(topology, 2)
    quality = split.quality(topology)
    assert quality.cut_edges == 0 and quality.two_hop_split == 0
    assert sorted(split.loads()) == [10, 10]
    for c in range(4):
        assert len({split.partition_of(f"c{c}-{i}") for i in range(5)}) == 1


def test_a_large_component_is_split_into_balanced_adjacent_regions() -> None:
    topology = Topology(grid(12))  # 144 devices, 264 links, one component
    for partitions in (2, 4):
        split = partition_topology(topology, partitions)
        quality = split.quality(topology)
        cap = -(-144 * 1.05 // partitions)
        assert max(split.loads()) <= cap and sum(split.loads()) == 144
        baseline = hashed(topology, partitions).quality(topology)
        # a straight cut of a 12 x 12 grid into halves or quarters cuts 12 or 24 links;
        # hashing cuts about half or three quarters of all 264
        assert quality.cut_edges <= 2 * 12 * (partitions // 2)
        assert quality.cut_edges * 4 < baseline.cut_edges
        assert quality.two_hop_split_share * 3 < baseline.two_hop_split_share


def test_the_map_does_not_depend_on_input_order() -> None:
    edges = grid(6) + chains(3, 7)
    shuffled = edges[:]
    random.Random(5).shuffle(shuffled)
    flipped = [(b, a) for a, b in shuffled]
    first = partition_topology(Topology(edges), 3)
    for other in (Topology(shuffled), Topology(flipped)):
        again = partition_topology(other, 3)
        assert dict(again.assignment) == dict(first.assignment)
        assert again.digest() == first.digest()


def test_unknown_devices_hash_the_same_in_every_process() -> None:
    split = partition_topology(Topology(chains(2, 3)), 4)
    names = ["router-7", "olt.paris.12", "é-ß", "x"]
    here = [split.partition_of(n) for n in names]
    assert all(0 <= p < 4 for p in here)
    code = (
        "from allo.noc.broker.partition import hash_partition;"
        f"print([hash_partition(n, 4) for n in {names!r}])"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            check=True,
        )
        assert out.stdout.strip() == str(here)


def test_the_balance_is_not_loosened_by_rounding() -> None:
    pairs = Topology([(str(2 * i), str(2 * i + 1)) for i in range(10)])  # 20 devices
    assert max(partition_topology(pairs, 3).loads()) == 7  # 20 / 3 * 1.05 = 7.0


def test_no_topology_means_hash_partitions_and_bad_counts_are_refused() -> None:
    split = partition_topology(None, 3)
    assert split.partition_of("a") == hash_partition("a", 3)
    assert partition_topology(Topology(chains(1, 3)), 1).loads() == [3]
    for wrong in (0, -1, 5000):
        with pytest.raises(InvalidInputError, match="partitions must be between"):
            partition_topology(None, wrong)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=90),
    st.integers(1, 6),
)
def test_every_device_gets_one_partition_within_the_balance(
    edges: list[tuple[int, int]], partitions: int
) -> None:
    topology = Topology([(str(a), str(b)) for a, b in edges])
    split = partition_topology(topology, partitions)
    assert set(split.assignment) == set(topology.devices)
    assert all(0 <= p < partitions for p in split.assignment.values())
    if len(topology):
        cap = -(-len(topology) * 1.05 // partitions)
        assert max(split.loads()) <= max(1, cap)
    assert split.quality(topology).cut_edges <= topology.edge_count()


@pytest.mark.skipif(not (SHARED / "pcic2021-24V_439N_Microwave").is_dir(), reason="no data")
def test_on_the_microwave_topology_regions_cut_far_less_than_hashing() -> None:
    topology = Topology.load(SHARED / "pcic2021-24V_439N_Microwave" / "Topology.npy")
    for partitions in (2, 4):
        quality = partition_topology(topology, partitions).quality(topology)
        baseline = hashed(topology, partitions).quality(topology)
        assert quality.cut_edges * 10 < baseline.cut_edges
        assert max(quality.loads) - min(quality.loads) <= 0.1 * len(topology) / partitions


def test_weights_share_out_a_busy_region_at_the_price_of_a_few_links() -> None:
    topology = Topology(chains(4, 5))
    busy = {f"c0-{i}": 20.0 for i in range(5)}  # one chain raises most alarms
    plain = partition_topology(topology, 2)
    weighted = partition_topology(topology, 2, weights=busy)

    def load(split: Partitioning) -> list[float]:
        out = [0.0, 0.0]
        for device in topology.devices:
            out[split.partition_of(device)] += busy.get(device, 1.0)
        return out

    assert max(load(plain)) / sum(load(plain)) > 0.85  # by device count: one side drowns
    assert max(load(weighted)) <= -(-(100 + 15) * 1.05 // 2)  # within the 5 % balance
    assert 0 < weighted.quality(topology).cut_edges <= 2
    with pytest.raises(InvalidInputError, match="weights must be positive"):
        partition_topology(topology, 2, weights={"c0-0": -1.0})
