"""``allo noc``: learn the causal graph between alarm types and replay alarm files.

Also ``causal``, meant to be registered as ``allo eval causal``: F1 of the learned graph
against a ground-truth DAG.
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from allo.cli.common import console, handle_errors, writable
from allo.files import written

if TYPE_CHECKING:
    from allo.domain.alarms import Alarm, Incident
    from allo.noc.causal import CausalGraph
    from allo.noc.sources.base import InputReport
    from allo.noc.topology import Topology

app = typer.Typer(
    help="NOC alarm engine: learn, replay, ingest (persisted), report.", no_args_is_help=True
)

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


#: earlier than this (about 3,000 years before 1970) a raise time is a broken clock
_EARLIEST = -1e11


def _learnable(rows: list[Alarm], report: InputReport) -> list[Alarm]:
    """The alarms a graph is learned from: not the stand-ins of unreadable rows, and not
    alarms raised far in the future (as the pipeline sees it) or absurdly far in the past,
    one of which (at 1e308) would stretch the time span until every fitted rate is zero
    (a NaN graph)."""
    from allo.noc.pipeline import PipelineConfig
    from allo.noc.sources.base import MALFORMED_TYPE

    horizon = time.time() + PipelineConfig().future_seconds
    readable = [a for a in rows if a.alarm_type != MALFORMED_TYPE]
    usable = [a for a in readable if _EARLIEST <= a.raised_at <= horizon]
    if len(usable) < len(readable):
        report.add(
            "not_learned_from",
            -1,
            f"{len(readable) - len(usable)} alarm(s) raised far in the future (or before "
            "any clock could have stamped them) left out of learning",
        )
    return usable


def _history(
    path: Path | None, from_store: bool, days: float | None, stream: str | None
) -> tuple[list[Alarm], InputReport, str]:
    """The alarms to learn from, the report of their problems and where they come from."""
    from allo.errors import InvalidInputError
    from allo.noc.sources.base import InputReport

    if path is None and not from_store:
        raise InvalidInputError("nothing to learn from: give --alarms FILE or --from-store")
    if path is not None and from_store:
        raise InvalidInputError("give --alarms FILE or --from-store, not both")
    if path is not None:
        if days is not None or stream is not None:
            raise InvalidInputError("--days and --stream choose stored alarms: add --from-store")
        rows, report = _read(path)
        return rows, report, str(path)
    from allo.cli.common import settings as load
    from allo.noc.pipeline import PipelineConfig
    from allo.noc.store import SqlNocStore

    store = SqlNocStore(load().resolved_database_url)
    try:
        store.migrate()
        horizon = time.time() + PipelineConfig().future_seconds
        rows = store.history(stream, days, until=horizon)
    finally:
        store.close()
    if not rows:
        scope = f"of stream {stream!r} " if stream else ""
        window = f"in the last {days:g} days " if days is not None else ""
        raise InvalidInputError(
            f"the store holds no alarm {scope}{window}to learn from: send or ingest alarms "
            "first (allo noc ingest FILE), or widen --days"
        )
    label = "store" + (f" stream {stream}" if stream else "")
    return rows, InputReport(), label + (f", last {days:g} days" if days is not None else "")


def _load_graph(path: Path, report: InputReport) -> CausalGraph:
    """The graph file at ``path``; a cycle in it is reported (``graph_cycle``)."""
    from allo.noc.causal import CausalGraph

    graph = CausalGraph.load(path)
    graph.report_cycle(str(path), report)
    return graph


def _graph_for(
    path: Path | None, rows: list[Alarm], report: InputReport, topology: Topology | None
) -> tuple[CausalGraph | None, str]:
    """The graph to replay with and where it comes from: the file given, else one learned
    from the alarms themselves, else none when no alarm can be learned from (a file of
    unreadable rows still replays: each row still lands in an incident)."""
    from allo.noc.causal import HawkesLearner

    if path is not None:
        graph = _load_graph(path, report)
        kinds = {a.alarm_type for a in rows}
        if graph.edges and not any(e.cause in kinds or e.effect in kinds for e in graph.edges):
            report.add(
                "graph_mismatch",
                -1,
                f"no alarm type of {path} occurs in the alarms: nothing will be correlated",
            )
        return graph, str(path)
    usable = _learnable(rows, report)
    if not usable:
        return None, "none: no usable alarm to learn from"
    return HawkesLearner().learn(usable, topology), "learned from the replayed file"


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
    out: Annotated[
        Path,
        typer.Option("--out", dir_okay=False, help="Where to write the graph (.json, or .npy)."),
    ],
    alarms: Annotated[
        Path | None,
        typer.Option("--alarms", exists=True, dir_okay=False, help="Alarm file (.csv or .jsonl)."),
    ] = None,
    from_store: Annotated[
        bool,
        typer.Option(
            "--from-store",
            help="Learn from the alarms the engine stored (ALLO_DATABASE_URL, or the SQLite "
            "file in ALLO_DATA_DIR) instead of a file.",
        ),
    ] = False,
    days: Annotated[
        float | None,
        typer.Option(
            "--days",
            min=0.001,
            help="With --from-store: the last N days only, before the newest stored alarm.",
        ),
    ] = None,
    stream: Annotated[
        str | None,
        typer.Option("--stream", help="With --from-store: this stream and its partitions only."),
    ] = None,
    topology: TopologyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Learn which alarm types cause which (topological Hawkes process), from history:
    an alarm file, or the alarms stored by `allo serve`, `ingest` and `consume`. `allo
    serve` uses the graph at <ALLO_DATA_DIR>/noc/graph.json from its next start."""
    from allo.noc.causal import HawkesLearner

    with handle_errors():
        writable(out, alarms, topology)
        rows, report, origin = _history(alarms, from_store, days, stream)
        topo = _topology(topology, rows, report)
        learner = HawkesLearner()
        graph = learner.learn(_learnable(rows, report), topo)
        graph.save(out)
    summary = {
        "learned_from": origin,
        "alarms": len(rows),
        "types": len(graph.types),
        "edges": len(graph.edges),
        "seconds": round(learner.seconds, 3),
        "phases": {name: round(value, 3) for name, value in learner.phases.items()},
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
    from allo.clock import SystemClock
    from allo.noc.evaluation import IncidentRows, check_truth_covers, judge, load_truth
    from allo.noc.incidents import incident_json
    from allo.noc.pipeline import build_pipeline
    from allo.noc.replay import replay as run_replay

    with handle_errors():
        started = time.perf_counter()
        if incidents_out is not None:
            writable(incidents_out, alarms, topology, graph, truth)
        rows, report = _read(alarms)
        dag = load_truth(truth) if truth is not None else None
        if dag is not None:
            check_truth_covers(rows, dag)
        topo = _topology(topology, rows, report)
        learned, graph_source = _graph_for(graph, rows, report, topo)
        clock = SystemClock()
        pipeline = build_pipeline(clock, topology=topo, graph=learned, report=report)
        with written(incidents_out) if incidents_out else nullcontext() as handle:

            def write(incident: Incident) -> None:
                if handle is not None:
                    handle.write(json.dumps(incident_json(incident), ensure_ascii=False) + "\n")

            result = run_replay(rows, pipeline, clock, speed=speed, on_incident=write)
        summary = result.summary()
        summary["graph"] = graph_source
        summary["total_seconds"] = round(time.perf_counter() - started, 3)
        if dag is not None:
            summary.update(judge(rows, [IncidentRows.of(i) for i in result.incidents], dag, topo))
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


GraphOption = Annotated[
    Path | None,
    typer.Option(
        "--graph",
        exists=True,
        dir_okay=False,
        help="Causal graph from `allo noc learn`; learned from the file itself when absent.",
    ),
]


def _stream_name(path: Path) -> str:
    """A stream per file: its stem and a short hash of its absolute path."""
    import hashlib
    import re

    stem = re.sub(r"[^A-Za-z0-9_]", "_", path.stem)[:28] or "file"
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    return f"{stem}.{digest}"


@app.command("ingest")
def ingest(
    alarms: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Alarm file (.csv or .jsonl).")
    ],
    topology: TopologyOption = None,
    graph: GraphOption = None,
    stream: Annotated[
        str | None,
        typer.Option("--stream", help="Stream name (default: from the file's name and path)."),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option("--speed", min=0.001, help="Replay at N times real time."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Alarms per transaction (about).")
    ] = 2000,
    partitions: Annotated[
        int,
        typer.Option(
            "--partitions",
            min=1,
            help="Processes, one per topology region (streams <stream>.<p>); one process "
            "when the regions would cut a topology link. Not with --speed.",
        ),
    ] = 1,
    as_json: JsonOption = False,
) -> None:
    """Replay a file through the pipeline and persist alarms and incidents (kill -9 safe).

    Run it again after a crash (with the same --partitions): alarms already stored are
    skipped, open incidents are rebuilt, nothing is lost or counted twice. A run with
    another --partitions than the file's first is refused (it would store it again).
    The database is the knowledge store's (ALLO_DATABASE_URL, or the SQLite file in
    ALLO_DATA_DIR).
    """
    from allo.cli.common import settings as load
    from allo.clock import SystemClock
    from allo.noc.engine import NocEngine
    from allo.noc.replay import PartitionPlan, check_stored_layout
    from allo.noc.replay import replay as run_replay
    from allo.noc.sources import open_source
    from allo.noc.store import SqlNocStore

    config = load()
    with handle_errors():
        started = time.perf_counter()
        source = open_source(alarms)
        rows: list[Alarm] | None = None
        learned = _load_graph(graph, source.report) if graph is not None else None
        if learned is None or topology is not None:
            rows = list(source)
        topo = _topology(topology, rows or [], source.report)
        if learned is None:
            assert rows is not None
            learned, _ = _graph_for(None, rows, source.report, topo)
        if partitions > 1:
            from allo.errors import InvalidInputError

            if speed is not None:
                raise InvalidInputError(
                    "--partitions needs a replay as fast as possible: drop --speed"
                )
            split = _ingest_split(
                alarms,
                config.resolved_database_url,
                stream or _stream_name(alarms),
                partitions,
                topo,
                learned,
                batch_size,
                source.report if rows is not None else None,
            )
            if split is not None:
                if as_json:
                    print(json.dumps(split))
                else:
                    console.print(
                        f"{split['rows']} rows: {split['accepted']} new, "
                        f"{split['already_stored']} already stored, in {partitions} processes "
                        f"(streams {', '.join(split['streams'])}): {split['stored']['alarms']} "
                        f"alarms in {split['stored']['incidents']} incidents "
                        f"({split['alarms_per_second']} alarms/s)",
                        highlight=False,
                    )
                return
        clock = SystemClock()
        store = SqlNocStore(config.resolved_database_url)
        name = stream or _stream_name(alarms)
        try:
            store.migrate()
            check_stored_layout(
                store.devices_by_stream(name), name, PartitionPlan(1, None, "one process")
            )
        except BaseException:
            store.close()
            raise
        engine = NocEngine(
            store,
            clock,
            stream=name,
            source="file",
            topology=topo,
            graph=learned,
            history=0,
        )
        try:
            engine.warm_up()
            for kind, count in source.report.counts.items():
                engine.report.counts[kind] += count
            result = run_replay(
                rows if rows is not None else source,
                engine,
                clock,
                speed=speed,
                batch_size=batch_size,
            )
            if rows is None:  # read lazily: the source counted its problems as it went
                for kind, count in source.report.counts.items():
                    engine.report.counts[kind] += count
            summary: dict[str, object] = {
                "stream": engine.stream,
                "rows": result.alarms,
                "accepted": engine.totals["accepted"],
                "already_stored": engine.totals["already_stored"],
                "recovered": engine.recovered,
                "incidents_closed": len(result.incidents),
                "stored": store.counts(engine.stream),
                "alarms_per_second": result.summary()["alarms_per_second"],
                "seconds": round(result.seconds, 3),
                "total_seconds": round(time.perf_counter() - started, 3),
                "folded": dict(sorted(result.folded.items())),
                "input_problems": engine.report.to_json(),
            }
        finally:
            engine.close()
    if as_json:
        print(json.dumps(summary))
        return
    stored = summary["stored"]
    assert isinstance(stored, dict)
    console.print(
        f"{summary['rows']} rows: {summary['accepted']} new, {summary['already_stored']} "
        f"already stored; stream {engine.stream} now holds {stored['alarms']} alarms in "
        f"{stored['incidents']} incidents ({summary['alarms_per_second']} alarms/s)",
        highlight=False,
    )


def _ingest_split(
    path: Path,
    url: str,
    stream: str,
    partitions: int,
    topology: Topology | None,
    graph: CausalGraph | None,
    batch_size: int,
    read_report: InputReport | None,
) -> dict[str, Any] | None:
    """``allo noc ingest --partitions N``: the summary, or ``None`` (after saying why) when
    the topology cannot be split without cutting a link, so that one process runs."""
    from allo.noc.replay import plan_partitions, replay_partitioned
    from allo.noc.store import SqlNocStore

    plan = plan_partitions(topology, partitions)
    if plan.partitioning is None:
        console.print(f"--partitions {partitions}: {plan.reason}", highlight=False)
        return None
    started = time.perf_counter()
    result = replay_partitioned(
        path, url, stream, plan, topology=topology, graph=graph, batch_size=batch_size
    )
    if read_report is not None:  # problems met while reading the topology's check
        for kind, count in read_report.counts.items():
            if kind.startswith("topology"):
                result.report.counts[kind] += count
    store = SqlNocStore(url)
    try:
        per_stream = [store.counts(s) for s in result.streams]
    finally:
        store.close()
    stored = {k: sum(c[k] for c in per_stream) for k in per_stream[0]}
    return {
        "stream": stream,
        "streams": result.streams,
        "partitions": result.plan.to_json() | {"alarms": result.per_partition},
        "rows": result.alarms,
        "accepted": result.accepted,
        "already_stored": result.already_stored,
        "recovered": result.recovered,
        "incidents_closed": result.incidents,
        "stored": stored,
        "alarms_per_second": result.summary()["alarms_per_second"],
        "seconds": round(result.seconds, 3),
        "total_seconds": round(time.perf_counter() - started, 3),
        "folded": dict(sorted(result.folded.items())),
        "input_problems": result.report.to_json(),
    }


@app.command("report")
def report(
    alarms: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Alarm file (.csv or .jsonl).")
    ],
    out: Annotated[Path, typer.Option("--out", file_okay=False, help="Folder for report.html.")],
    topology: TopologyOption = None,
    graph: GraphOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay a file and write an HTML report with plots (inline SVG, no dependency)."""
    from allo.clock import SystemClock
    from allo.errors import InvalidInputError
    from allo.noc.pipeline import build_pipeline
    from allo.noc.replay import replay as run_replay
    from allo.noc.report import write_report

    with handle_errors():
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(f"cannot make the report folder {out}: {exc}") from exc
        rows, problems = _read(alarms)
        topo = _topology(topology, rows, problems)
        learned, _ = _graph_for(graph, rows, problems, topo)
        clock = SystemClock()
        pipeline = build_pipeline(clock, topology=topo, graph=learned, report=problems)
        result = run_replay(rows, pipeline, clock)
        path = write_report(out, alarms.name, rows, result, learned, topo is not None)
    summary = {**result.summary(), "report": str(path)}
    if as_json:
        print(json.dumps(summary))
        return
    console.print(
        f"{summary['alarms']} alarms → {summary['incidents']} incidents "
        f"(reduction {summary['reduction']:.1%}); report written to {path}",
        highlight=False,
    )


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
    from allo.noc.evaluation import check_truth_covers, edge_scores, load_truth

    with handle_errors():
        started = time.perf_counter()
        rows, report = _read(alarms)
        topo = _topology(topology, rows, report)
        matrix = load_truth(truth)
        check_truth_covers(rows, matrix)
        graph = HawkesLearner().learn(_learnable(rows, report), topo)
        scores: dict[str, object] = dict(
            edge_scores(graph.matrix([str(i) for i in range(matrix.shape[0])]), matrix)
        )
        scores["seconds"] = round(time.perf_counter() - started, 3)
    if as_json:
        print(json.dumps(scores))
        return
    console.print("  ".join(f"{k}={v}" for k, v in scores.items()), highlight=False)


from allo.cli import noc_broker  # noqa: E402 - the broker commands (publish, consume)

noc_broker.register(app)
