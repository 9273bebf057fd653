"""Builders shared by the broker tests: a topology of separate chains and alarms on it."""

from __future__ import annotations

import numpy as np

from allo.domain.alarms import Alarm
from allo.noc.causal import CausalGraph
from allo.noc.topology import Topology

# four separate chains of five devices: two regions of two chains each, no link cut
TOPOLOGY = Topology([(f"c{c}-{i}", f"c{c}-{i + 1}") for c in range(4) for i in range(4)])
GRAPH = CausalGraph.from_matrix(np.array([[0, 1], [0, 0]]))


def alarms(count: int = 1200, seed: int = 4) -> list[Alarm]:
    """Type 0 on a device, often followed by type 1 next to it (a cause and its symptom)."""
    rng = np.random.default_rng(seed)
    out: list[Alarm] = []
    moment = 1e6
    while len(out) < count:
        moment += float(rng.integers(30, 400))
        chain, place = int(rng.integers(0, 4)), int(rng.integers(0, 4))
        out.append(
            Alarm(f"a{len(out)}", f"c{chain}-{place}", "0", moment, moment + 5, row=len(out))
        )
        if rng.random() < 0.7:
            near = f"c{chain}-{place + 1}"
            out.append(Alarm(f"a{len(out)}", near, "1", moment + 20, moment + 25, row=len(out)))
    return out[:count]
