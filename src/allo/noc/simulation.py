"""Simulated alarm histories with a known causal graph between alarm types.

Why: the PCIC sets have 18 and 24 alarm types, while a real network raises hundreds,
and their expert graphs disagree with the time order of many alarm pairs. A history
drawn from the learner's own model family (a topological Hawkes process) with a known
graph, of any size, says how learning time grows with the number of types
(``benchmarks/noc_learn_scaling.py``) and whether learning and folding work end to end
when the data follow the model (``tests/noc/test_simulation.py``).

Each type has up to two causes among the types before it (so the graph is acyclic); a
background alarm of a type starts a cascade: each cause alarm triggers each of its
effects with probability ``trigger``, after an exponential delay, on the same device
or one of the next two of a ring of devices.
"""

from __future__ import annotations

import numpy as np

from allo.domain.alarms import Alarm
from allo.noc.topology import Topology


def random_dag(types: int, rng: np.random.Generator) -> np.ndarray:
    """``M[c, e] == 1``: type ``c`` causes ``e``; up to two causes per type, earlier ones."""
    dag = np.zeros((types, types), dtype=np.int64)
    for effect in range(1, types):
        for cause in rng.choice(effect, size=min(effect, int(rng.integers(0, 3))), replace=False):
            dag[cause, effect] = 1
    return dag


def ring_topology(devices: int) -> Topology:
    """Devices ``"0"..`` each linked to the next two: sparse and connected."""
    return Topology([(str(d), str((d + k) % devices)) for d in range(devices) for k in (1, 2)])


def simulate(
    dag: np.ndarray,
    devices: int,
    span: float,
    alarms_per_type: float,
    rng: np.random.Generator,
    *,
    trigger: float = 0.5,
    delay: float = 60.0,
) -> list[Alarm]:
    """About ``alarms_per_type`` alarms of each type over ``span`` seconds, raised to the
    second, in time order (rows numbered in that order); type ``k`` is named ``"k"``."""
    types = len(dag)
    children = [np.flatnonzero(dag[c]) for c in range(types)]
    queue: list[tuple[float, int, int]] = []
    for kind in range(types):
        # background rate such that a type and the cascades reaching it give about the count
        count = rng.poisson(alarms_per_type / (1 + trigger * len(children[kind])))
        times = rng.uniform(0, span, count)
        places = rng.integers(0, devices, count)
        queue.extend((float(t), kind, int(d)) for t, d in zip(times, places, strict=True))
    events: list[tuple[float, int, int]] = []
    while queue:
        t, kind, device = queue.pop()
        events.append((t, kind, device))
        for effect in children[kind]:
            if rng.random() < trigger:
                hop = int(rng.choice((0, 0, 1, 2)))  # same device, or one of the next two
                queue.append(
                    (t + float(rng.exponential(delay)), int(effect), (device + hop) % devices)
                )
    events.sort()
    kept = [(t, k, d) for t, k, d in events if t < span]
    return [
        Alarm(f"s{i}", str(d), str(k), float(round(t)), row=i) for i, (t, k, d) in enumerate(kept)
    ]
