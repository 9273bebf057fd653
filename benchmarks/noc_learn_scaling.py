"""How causal learning scales with the number of alarm types, on simulated alarms.

    python benchmarks/noc_learn_scaling.py [--types 25,50,100,200,400] [--alarms-per-type 60]
        [--devices 60] [--days 30] [--seed 3] [--json]

A real network raises hundreds of alarm types; the PCIC sets have 18 and 24. For each
number of types this simulates a topological Hawkes process with a known random DAG
(:mod:`allo.noc.simulation`: up to two causes per type, a cause alarm triggers each
effect with probability 0.5 after 60 s on average, on the same or a nearby device of a
ring), learns the graph with the default learner, and prints the learning time (total
and per phase: features and held-out selection, then the search over whole graphs) and
the F1 of the learned edges against the simulated DAG. The data are simulated here,
with their own truth, so F1 says whether speed was bought with quality; it is not
comparable to the PCIC figures. Fewer ``--devices`` or ``--days`` make the alarms
denser: more pairs of types meet within the kernel's window, and every such pair is a
candidate edge. ``peak_mb`` is the process's peak memory so far (the largest set's, when
run in order). ``--replay`` also replays the alarms through the pipeline with the
learned graph and judges the incidents with the simulated DAG as issue 5 defines it.
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

from allo.clock import SystemClock  # noqa: E402
from allo.noc.causal import HawkesLearner  # noqa: E402
from allo.noc.evaluation import IncidentRows, edge_scores, judge  # noqa: E402
from allo.noc.pipeline import build_pipeline  # noqa: E402
from allo.noc.replay import replay  # noqa: E402
from allo.noc.simulation import random_dag, ring_topology, simulate  # noqa: E402


def measure(
    types: int, devices: int, days: float, alarms_per_type: float, seed: int, *, replayed: bool
) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    dag = random_dag(types, rng)
    alarms = simulate(dag, devices, days * 86_400.0, alarms_per_type, rng)
    topology = ring_topology(devices)
    learner = HawkesLearner()
    started = time.perf_counter()
    graph = learner.learn(alarms, topology)
    seconds = time.perf_counter() - started
    scores = edge_scores(graph.matrix([str(k) for k in range(types)]), dag)
    judged: dict[str, object] = {}
    if replayed:
        clock = SystemClock()
        result = replay(alarms, build_pipeline(clock, topology=topology, graph=graph), clock)
        verdict = judge(alarms, [IncidentRows.of(i) for i in result.incidents], dag, topology)
        judged = {
            "replay_alarms_per_second": round(result.alarms / result.seconds),
            "reduction": round(result.reduction, 4),
            **{k: verdict[k] for k in ("root_recall", "root_precision", "incoherent_incidents")},
        }
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
        **judged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--types", default="25,50,100,200,400")
    parser.add_argument("--alarms-per-type", type=float, default=60.0)
    parser.add_argument("--devices", type=int, default=60)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--replay", action="store_true", help="Also replay and judge.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    for types in (int(t) for t in args.types.split(",")):
        result = measure(
            types, args.devices, args.days, args.alarms_per_type, args.seed, replayed=args.replay
        )
        results.append(result)
        if not args.json:
            print(result, flush=True)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
