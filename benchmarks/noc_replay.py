"""Replay both PCIC 2021 alarm sets: reduction, root metrics, speed and causal F1.

    python benchmarks/noc_replay.py [--data ../shared/data/alarms] [--json]
        [--scales 1,10,100,1000 --scales 3,30,300,3000] [--split] [--sets 24V]
        [--save-graphs DIR | --graphs DIR]

For each set: learn the causal graph from the alarms alone (``seconds``: learning time,
``causal_*``: precision, recall and F1 of its directed edges against the expert DAG),
``causal_selection``: the held-out log-likelihood of every kernel/penalty candidate, the
best of which was used), replay the file through the pipeline with that graph
(``alarms_per_second`` from the first row read to the last incident out, learning
excluded), then judge the incidents with the truth DAG as issue 5 defines it. The truth
is used only for scoring.

``--scales`` adds a kernel made of exponentials with these time constants to the
candidates of the held-out selection (repeat it for several). ``--split`` learns on the
first half of the time span and replays and judges the second half only: the figures of
a graph that has not seen the alarms it folds. ``--save-graphs`` writes each learned
graph to ``DIR/<set>.json``; ``--graphs`` replays those instead of learning again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from allo.clock import SystemClock  # noqa: E402
from allo.domain.alarms import Alarm  # noqa: E402
from allo.noc.causal import CausalGraph, HawkesConfig, HawkesLearner  # noqa: E402
from allo.noc.evaluation import IncidentRows, edge_scores, judge, load_truth  # noqa: E402
from allo.noc.pipeline import build_pipeline  # noqa: E402
from allo.noc.replay import replay  # noqa: E402
from allo.noc.sources import CsvSource  # noqa: E402
from allo.noc.topology import Topology  # noqa: E402

SETS = ("pcic2021-18V_55N_Wireless", "pcic2021-24V_439N_Microwave")


def halves(alarms: list[Alarm]) -> tuple[list[Alarm], list[Alarm]]:
    """The alarms raised in the first half of the time span, and the others."""
    times = [a.raised_at for a in alarms]
    middle = (min(times) + max(times)) / 2
    return [a for a in alarms if a.raised_at <= middle], [a for a in alarms if a.raised_at > middle]


def measure(
    folder: Path,
    config: HawkesConfig,
    *,
    split: bool = False,
    graph_in: Path | None = None,
    graph_out: Path | None = None,
) -> dict[str, object]:
    """Every figure for one data set folder (``Alarm.csv``, ``DAG.npy``, ``Topology.npy``?)."""
    source = CsvSource(folder / "Alarm.csv")
    started = time.perf_counter()
    alarms = list(source)
    read_seconds = time.perf_counter() - started
    topology_path = folder / "Topology.npy"
    topology = Topology.load(topology_path) if topology_path.is_file() else None
    truth = load_truth(folder / "DAG.npy")
    learned_on, replayed = halves(alarms) if split else (alarms, alarms)
    learner = HawkesLearner(config)
    if graph_in is not None:
        graph = CausalGraph.load(graph_in)
    else:
        graph = learner.learn(learned_on, topology)
        if graph_out is not None:
            graph.save(graph_out)
    causal = edge_scores(graph.matrix([str(i) for i in range(truth.shape[0])]), truth)
    clock = SystemClock()
    pipeline = build_pipeline(clock, topology=topology, graph=graph, report=source.report)
    result = replay(replayed, pipeline, clock)
    seconds = result.seconds + read_seconds
    scores = judge(replayed, [IncidentRows.of(i) for i in result.incidents], truth, topology)
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
        "causal_decays": list(graph.decays) or [graph.parameters.get("decay_seconds")],
        "causal_penalty": graph.parameters.get("penalty"),
        "causal_selection": [
            {"decays": list(d), "penalty": p, "heldout_nats_per_alarm": round(s, 4)}
            for d, p, s in learner.selection
        ],
        "topology": topology is not None,
        "split": split,
        "folded": dict(result.folded),
    }


def _scales(text: str) -> tuple[float, ...]:
    try:
        scales = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--scales {text!r}: give seconds, e.g. 1,10,100"
        ) from None
    if not scales or min(scales) <= 0:
        raise argparse.ArgumentTypeError(f"--scales {text!r}: time constants must be > 0")
    return scales


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "alarms")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.add_argument(
        "--scales",
        type=_scales,
        action="append",
        default=None,
        help="A sum-of-exponentials kernel for the held-out selection (repeatable).",
    )
    parser.add_argument("--split", action="store_true", help="Learn on the first half only.")
    parser.add_argument(
        "--sets", nargs="*", default=None, help="Only the sets whose name has one of these."
    )
    parser.add_argument("--save-graphs", type=Path, default=None, help="Write each graph here.")
    parser.add_argument("--graphs", type=Path, default=None, help="Replay graphs saved here.")
    args = parser.parse_args()
    config = HawkesConfig()
    if args.scales:
        from allo.noc.stages import correlate

        if not hasattr(correlate, "ScaledPosterior"):
            parser.error(
                "--scales needs the correlation stage's multi-scale posterior "
                "(allo.noc.causal_kernel.ScaledPosterior), which this checkout's "
                "allo.noc.stages.correlate does not use yet"
            )
        config = replace(config, scale_candidates=tuple(args.scales))
    names = [n for n in SETS if not args.sets or any(s in n for s in args.sets)]
    if args.save_graphs is not None:
        args.save_graphs.mkdir(parents=True, exist_ok=True)
    results = {
        name: measure(
            args.data / name,
            config,
            split=args.split,
            graph_in=args.graphs / f"{name}.json" if args.graphs is not None else None,
            graph_out=args.save_graphs / f"{name}.json" if args.save_graphs is not None else None,
        )
        for name in names
    }
    if args.json:
        print(json.dumps(results))
        return
    for name, figures in results.items():
        print(name)
        for key, value in figures.items():
            print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
