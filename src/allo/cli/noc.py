"""``allo noc``: learn the causal graph between alarm types and replay alarm files.

Also ``causal``, meant to be registered as ``allo eval causal``: F1 of the learned graph
against a ground-truth DAG.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from allo.cli.common import console, handle_errors

if TYPE_CHECKING:
    from allo.domain.alarms import Alarm, Incident
    from allo.noc.sources.base import InputReport
    from allo.noc.topology import Topology

app = typer.Typer(help="NOC alarm engine: learn, replay.", no_args_is_help=True)

AlarmsOption = Annotated[
    Path, typer.Option("--alarms", exists=True, dir_okay=False, help="Alarm file (.csv or .jsonl).")
]
TopologyOption = Annotated[
    Path | None,
    typer.Option(
        "--topology", exists=True, dir_okay=False, help="Device adjacency (.npy, .csv or .json)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _read(path: Path) -> tuple[list[Alarm], InputReport]:
    from allo.noc.sources import open_source

    source = open_source(path)
    return list(source), source.report


def _topology(path: Path | None, alarms: list[Alarm], report: InputReport) -> Topology | None:
    if path is None:
        return None
    from allo.noc.topology import Topology

    topology = Topology.load(path)
    for warning in topology.warnings:
        report.add("topology", -1, warning)
    unknown = topology.check_devices(a.device for a in alarms if a.alarm_type != "malformed-input")
    if unknown:
        report.add(
            "topology_mismatch",
            -1,
            f"{len(unknown)} device(s) of the alarms are not "
            f"in the topology, e.g. {', '.join(unknown[:5])}",
        )
    return topology


@app.command("learn")
def learn(
    alarms: AlarmsOption,
    out: Annotated[
        Path,
        typer.Option("--out", dir_okay=False, help="Where to write the graph (.json, or .npy)."),
    ],
    topology: TopologyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Learn which alarm types cause which (topological Hawkes process), from history."""
    from allo.noc.causal import HawkesLearner

    with handle_errors():
        rows, report = _read(alarms)
        topo = _topology(topology, rows, report)
        learner = HawkesLearner()
        graph = learner.learn([a for a in rows if a.alarm_type != "malformed-input"], topo)
        graph.save(out)
    summary = {
        "types": len(graph.types),
        "edges": len(graph.edges),
        "seconds": round(learner.seconds, 3),
        "out": str(out),
        "input_problems": report.to_json(),
    }
    if as_json:
        print(json.dumps(summary))
        return
    console.print(
        f"{len(graph.edges)} causal edges between {len(graph.types)} alarm types "
        f"learned in {learner.seconds:.1f} s, written to {out}",
        highlight=False,
    )
    for edge in graph.edges[:10]:
        console.print(
            f"  {edge.cause} → {edge.effect}  (strength {edge.strength:.0f})", highlight=False
        )


@app.command("replay")
def replay(
    alarms: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Alarm file (.csv or .jsonl).")
    ],
    topology: TopologyOption = None,
    graph: Annotated[
        Path | None,
        typer.Option(
            "--graph",
            exists=True,
            dir_okay=False,
            help="Causal graph from `allo noc learn`; learned from the file itself when absent.",
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth", exists=True, dir_okay=False, help="Ground-truth DAG (.npy) to judge by."
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            "--speed",
            min=0.001,
            help="Replay at N times real time (default: as fast as possible).",
        ),
    ] = None,
    incidents_out: Annotated[
        Path | None,
        typer.Option("--incidents-out", dir_okay=False, help="Write one JSON line per incident."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Replay an alarm file through the pipeline and print the reduction it brings."""
    from allo.noc.causal import CausalGraph, HawkesLearner
    from allo.noc.clock import SystemClock
    from allo.noc.evaluation import IncidentRows, judge, load_truth
    from allo.noc.incidents import incident_json
    from allo.noc.pipeline import build_pipeline
    from allo.noc.replay import replay as run_replay

    with handle_errors():
        started = time.perf_counter()
        rows, report = _read(alarms)
        topo = _topology(topology, rows, report)
        if graph is not None:
            learned = CausalGraph.load(graph)
            graph_source = str(graph)
        else:
            learned = HawkesLearner().learn(
                [a for a in rows if a.alarm_type != "malformed-input"], topo
            )
            graph_source = "learned from the replayed file"
        clock = SystemClock()
        pipeline = build_pipeline(clock, topology=topo, graph=learned, report=report)
        handle = incidents_out.open("w", encoding="utf-8") if incidents_out else None

        def write(incident: Incident) -> None:
            if handle is not None:
                handle.write(json.dumps(incident_json(incident), ensure_ascii=False) + "\n")

        try:
            result = run_replay(rows, pipeline, clock, speed=speed, on_incident=write)
        finally:
            if handle is not None:
                handle.close()
        summary = result.summary()
        summary["graph"] = graph_source
        summary["total_seconds"] = round(time.perf_counter() - started, 3)
        if truth is not None:
            summary.update(
                judge(rows, [IncidentRows.of(i) for i in result.incidents], load_truth(truth), topo)
            )
    if as_json:
        print(json.dumps(summary))
        return
    console.print(
        f"{summary['alarms']} alarms → {summary['incidents']} incidents "
        f"(reduction {summary['reduction']:.1%}) at {summary['alarms_per_second']:.0f} alarms/s",
        highlight=False,
    )
    for key in ("root_recall", "root_precision", "incoherent_incidents"):
        if key in summary:
            console.print(f"  {key} = {summary[key]}", highlight=False)
    if report.total():
        console.print(f"  input problems: {dict(report.counts)}", highlight=False)


def causal(
    alarms: AlarmsOption,
    truth: Annotated[
        Path, typer.Option("--truth", exists=True, dir_okay=False, help="Ground-truth DAG (.npy).")
    ],
    topology: TopologyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Precision, recall and F1 over directed edges of the learned graph against a truth DAG."""
    from allo.noc.causal import HawkesLearner
    from allo.noc.evaluation import edge_scores, load_truth

    with handle_errors():
        started = time.perf_counter()
        rows, report = _read(alarms)
        topo = _topology(topology, rows, report)
        graph = HawkesLearner().learn([a for a in rows if a.alarm_type != "malformed-input"], topo)
        matrix = load_truth(truth)
        scores: dict[str, object] = dict(
            edge_scores(graph.matrix([str(i) for i in range(matrix.shape[0])]), matrix)
        )
        scores["seconds"] = round(time.perf_counter() - started, 3)
    if as_json:
        print(json.dumps(scores))
        return
    console.print("  ".join(f"{k}={v}" for k, v in scores.items()), highlight=False)
