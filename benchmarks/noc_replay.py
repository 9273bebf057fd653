"""Replay both PCIC 2021 alarm sets: reduction, root metrics, speed and causal F1.

    python benchmarks/noc_replay.py [--data ../shared/data/alarms] [--json]

For each set: learn the causal graph from the alarms alone (``seconds``: learning time,
``causal_*``: precision, recall and F1 of its directed edges against the expert DAG),
``causal_selection``: the held-out log-likelihood of every kernel/penalty candidate, the
best of which was used), replay the file through the pipeline with that graph
(``alarms_per_second`` from the first row read to the last incident out, learning
excluded), then judge the incidents with the truth DAG as issue 5 defines it. The truth
is used only for scoring.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from allo.noc.causal import HawkesLearner  # noqa: E402
from allo.noc.clock import SystemClock  # noqa: E402
from allo.noc.evaluation import IncidentRows, edge_scores, judge, load_truth  # noqa: E402
from allo.noc.pipeline import build_pipeline  # noqa: E402
from allo.noc.replay import replay  # noqa: E402
from allo.noc.sources import CsvSource  # noqa: E402
from allo.noc.topology import Topology  # noqa: E402

SETS = ("pcic2021-18V_55N_Wireless", "pcic2021-24V_439N_Microwave")


def measure(folder: Path) -> dict[str, object]:
    """Every figure for one data set folder (``Alarm.csv``, ``DAG.npy``, ``Topology.npy``?)."""
    source = CsvSource(folder / "Alarm.csv")
    started = time.perf_counter()
    alarms = list(source)
    read_seconds = time.perf_counter() - started
    topology_path = folder / "Topology.npy"
    topology = Topology.load(topology_path) if topology_path.is_file() else None
    truth = load_truth(folder / "DAG.npy")
    learner = HawkesLearner()
    graph = learner.learn(alarms, topology)
    causal = edge_scores(graph.matrix([str(i) for i in range(truth.shape[0])]), truth)
    clock = SystemClock()
    pipeline = build_pipeline(clock, topology=topology, graph=graph, report=source.report)
    result = replay(alarms, pipeline, clock)
    seconds = result.seconds + read_seconds
    scores = judge(alarms, [IncidentRows.of(i) for i in result.incidents], truth, topology)
    return {
        "alarms": result.alarms,
        "incidents": len(result.incidents),
        "reduction": round(result.reduction, 4),
        **{
            k: scores[k]
            for k in (
                "root_recall",
                "root_precision",
                "incoherent_incidents",
                "root_alarms",
                "rows_missing",
                "rows_duplicated",
            )
        },
        "alarms_per_second": round(result.alarms / seconds, 1),
        "causal_precision": causal["precision"],
        "causal_recall": causal["recall"],
        "causal_f1": causal["f1"],
        "causal_edges": causal["predicted_edges"],
        "seconds": round(learner.seconds, 3),
        "causal_decay_seconds": graph.parameters["decay_seconds"],
        "causal_penalty": graph.parameters["penalty"],
        "causal_selection": [
            {"decay_seconds": d, "penalty": p, "heldout_nats_per_alarm": round(s, 4)}
            for d, p, s in learner.selection
        ],
        "topology": topology is not None,
        "folded": dict(result.folded),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "alarms")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args()
    results = {name: measure(args.data / name) for name in SETS}
    if args.json:
        print(json.dumps(results))
        return
    for name, figures in results.items():
        print(name)
        for key, value in figures.items():
            print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
