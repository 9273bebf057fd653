"""How causal learning scales with the number of alarm types, on simulated alarms.

    python benchmarks/noc_learn_scaling.py [--types 25,50,100,200,400] [--alarms-per-type 60]
        [--devices 60] [--days 30] [--seed 3] [--json]

A real network raises hundreds of alarm types; the PCIC sets have 18 and 24. For each
number of types this simulates a topological Hawkes process with a known random DAG
(each type has up to two causes among the types before it; a cause alarm triggers its
effect on the same or an adjacent device with probability 0.5, after a delay of mean
60 s), learns the graph with the default learner, and prints the learning time (total
and per phase: features and held-out selection, then the search over whole graphs) and
the F1 of the learned edges against the simulated DAG. The data are simulated here,
with their own truth, so F1 says whether speed was bought with quality; it is not
comparable to the PCIC figures. Fewer ``--devices`` or ``--days`` make the alarms denser: more pairs
of types meet within the kernel's window, and every such pair is a candidate edge.
``peak_mb`` is the process's peak memory so far (the largest set's, when run in order).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from allo.domain.alarms import Alarm  # noqa: E402
from allo.noc.causal import HawkesLearner  # noqa: E402
from allo.noc.evaluation import edge_scores  # noqa: E402
from allo.noc.topology import Topology  # noqa: E402

TRIGGER = 0.5  # chance that a cause alarm triggers each of its effects
DELAY = 60.0  # mean delay from a cause to the effect it triggers, seconds


def random_dag(types: int, rng: np.random.Generator) -> np.ndarray:
    """``M[c, e]``: type ``c`` causes ``e``; up to two causes per type, among earlier types."""
    dag = np.zeros((types, types), dtype=np.int64)
    for effect in range(1, types):
        for cause in rng.choice(effect, size=min(effect, int(rng.integers(0, 3))), replace=False):
            dag[cause, effect] = 1
    return dag


def ring_topology(devices: int) -> Topology:
    """Each device linked to the next two: a sparse, connected network."""
    return Topology([(str(d), str((d + k) % devices)) for d in range(devices) for k in (1, 2)])


def simulate(
    dag: np.ndarray, devices: int, span: float, alarms_per_type: float, rng: np.random.Generator
) -> list[Alarm]:
    """Background alarms of every type, then the cascade each triggers down ``dag``."""
    types = len(dag)
    children = [np.flatnonzero(dag[c]) for c in range(types)]
    # background rate chosen so that roots and their cascades give about the asked count
    queue: list[tuple[float, int, int]] = []
    for kind in range(types):
        count = rng.poisson(alarms_per_type / (1 + TRIGGER * len(children[kind])))
        queue.extend(
            (float(t), kind, int(d))
            for t, d in zip(
                rng.uniform(0, span, count), rng.integers(0, devices, count), strict=True
            )
        )
    events: list[tuple[float, int, int]] = []
    while queue:
        t, kind, device = queue.pop()
        events.append((t, kind, device))
        for effect in children[kind]:
            if rng.random() < TRIGGER:
                hop = int(rng.choice((0, 0, 1, 2)))  # same device, or one of the next two
                where = (device + hop) % devices
                queue.append((t + float(rng.exponential(DELAY)), int(effect), where))
    events.sort()
    return [
        Alarm(f"s{i}", str(d), str(k), float(round(t)), row=i)
        for i, (t, k, d) in enumerate(events)
        if t < span
    ]


def measure(
    types: int, devices: int, days: float, alarms_per_type: float, seed: int
) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    dag = random_dag(types, rng)
    alarms = simulate(dag, devices, days * 86_400.0, alarms_per_type, rng)
    learner = HawkesLearner()
    started = time.perf_counter()
    graph = learner.learn(alarms, ring_topology(devices))
    seconds = time.perf_counter() - started
    scores = edge_scores(graph.matrix([str(k) for k in range(types)]), dag)
    return {
        "types": types,
        "alarms": len(alarms),
        "devices": devices,
        "days": days,
        "true_edges": int(dag.sum()),
        "seconds": round(seconds, 2),
        "phases": {name: round(value, 2) for name, value in learner.phases.items()},
        "f1": scores["f1"],
        "precision": scores["precision"],
        "recall": scores["recall"],
        "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", default="25,50,100,200,400")
    parser.add_argument("--alarms-per-type", type=float, default=60.0)
    parser.add_argument("--devices", type=int, default=60)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    for types in (int(t) for t in args.types.split(",")):
        result = measure(types, args.devices, args.days, args.alarms_per_type, args.seed)
        results.append(result)
        if not args.json:
            print(result, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
