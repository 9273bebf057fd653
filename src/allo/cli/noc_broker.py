"""``allo noc publish`` and ``allo noc consume``: alarms through Redis Streams.

``publish`` routes each alarm of a file to the stream of its topology region; one
``consume`` process per partition feeds its own engine (persisted in the configured
database, as ``allo noc ingest``) and acknowledges alarms only once they are committed.
Registered on the ``allo noc`` group by :func:`register`.
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from allo.cli.common import console, errors, handle_errors

if TYPE_CHECKING:
    from allo.noc.topology import Topology

RedisOption = Annotated[
    str,
    typer.Option(
        "--redis",
        envvar="ALLO_REDIS_URL",
        help="Redis URL, e.g. redis://127.0.0.1:6379/0 (or ALLO_REDIS_URL).",
    ),
]
PartitionsOption = Annotated[
    int, typer.Option("--partitions", min=1, max=1024, help="How many consumer partitions.")
]
TopologyOption = Annotated[
    Path | None,
    typer.Option(
        "--topology", exists=True, dir_okay=False, help="Device adjacency (.npy, .csv or .json)."
    ),
]
PrefixOption = Annotated[
    str, typer.Option("--key-prefix", help="Prefix of the Redis keys (one per deployment).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def register(app: typer.Typer) -> None:
    """Add ``publish`` and ``consume`` to the ``allo noc`` group."""
    app.command("publish")(publish)
    app.command("consume")(consume)


def file_tag(path: Path) -> str:
    """A short name for a file: its stem and a hash of its absolute path."""
    stem = re.sub(r"[^A-Za-z0-9_]", "_", path.stem)[:28] or "file"
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    return f"{stem}.{digest}"


def _load_topology(path: Path | None) -> Topology | None:
    if path is None:
        return None
    from allo.noc.topology import Topology

    return Topology.load(path)


def _alarm_weights(path: Path) -> dict[str, float]:
    """1 + each device's alarms in a history file: the load a region will bring."""
    from collections import Counter

    from allo.noc.sources import open_source

    counts = Counter(alarm.device for alarm in open_source(path))
    return {device: 1.0 + count for device, count in counts.items()}


def publish(
    alarms: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Alarm file (.csv or .jsonl).")
    ],
    redis_url: RedisOption,
    partitions: PartitionsOption,
    topology: TopologyOption = None,
    key_prefix: PrefixOption = "allo:alarms",
    rate: Annotated[
        float | None,
        typer.Option("--rate", min=0.001, help="Publish N alarms per second (default: at once)."),
    ] = None,
    id_prefix: Annotated[
        str | None,
        typer.Option(
            "--id-prefix",
            help="Prefix for ids the file does not give (row-N); default: from the file's "
            "name and path. '' keeps row-N.",
        ),
    ] = None,
    maxlen: Annotated[
        int, typer.Option("--maxlen", min=1000, help="Entries kept per stream (about).")
    ] = 1_000_000,
    balance_by: Annotated[
        Path | None,
        typer.Option(
            "--balance-by",
            exists=True,
            dir_okay=False,
            help="Alarm history (.csv or .jsonl): balance regions by each device's alarms "
            "instead of by device count.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Send an alarm file to the broker, each alarm to the stream of its topology region.

    Publishing the same file again resends the same ids: the consumers skip them.
    """
    from allo.noc.broker import (
        AlarmPublisher,
        StreamKeys,
        connect,
        partition_topology,
        prefixed_ids,
    )
    from allo.noc.sources import open_source

    with handle_errors():
        keys = StreamKeys(key_prefix)
        topo = _load_topology(topology)
        weights = _alarm_weights(balance_by) if balance_by is not None else None
        partitioning = partition_topology(topo, partitions, weights=weights)
        client = connect(redis_url)
        source = open_source(alarms)
        publisher = AlarmPublisher(
            client,
            partitioning,
            keys=keys,
            maxlen=maxlen,
            notify=lambda message: errors.print(f"[yellow]{message}[/yellow]", highlight=False),
        )
        unknown: dict[str, int] = {}

        def counted() -> Any:
            for alarm in source:
                if topo is not None and alarm.device not in topo:
                    unknown[alarm.device] = unknown.get(alarm.device, 0) + 1
                yield alarm

        tag = file_tag(alarms) if id_prefix is None else id_prefix
        report = publisher.publish(prefixed_ids(counted(), tag), rate=rate)
        client.close()
    summary: dict[str, object] = {
        **report.to_json(),
        "partitions": partitions,
        "key_prefix": key_prefix,
        "id_prefix": tag,
        "layout": partitioning.digest(),
        "unknown_devices": len(unknown),
        "unknown_device_alarms": sum(unknown.values()),
        "input_problems": source.report.to_json(),
    }
    if topo is not None:
        summary["partition_quality"] = partitioning.quality(topo).to_json()
    if as_json:
        print(json.dumps(summary))
        return
    console.print(
        f"{report.published} alarms published to {partitions} partition(s) "
        f"{report.per_partition} in {report.seconds:.1f} s",
        highlight=False,
    )
    if unknown:
        console.print(
            f"  {sum(unknown.values())} alarms on {len(unknown)} device(s) absent from the "
            "topology, routed by hash",
            highlight=False,
        )
    if source.report.total():
        console.print(f"  input problems: {dict(source.report.counts)}", highlight=False)


class _Stop:
    """Set by SIGTERM or SIGINT; the consumer finishes its batch, then exits cleanly."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True


def consume(
    partition: Annotated[int, typer.Option("--partition", min=0, help="This process's partition.")],
    partitions: PartitionsOption,
    redis_url: RedisOption,
    topology: TopologyOption = None,
    graph: Annotated[
        Path | None,
        typer.Option(
            "--graph",
            exists=True,
            dir_okay=False,
            help="Causal graph from `allo noc learn` (without it: no causal correlation).",
        ),
    ] = None,
    key_prefix: PrefixOption = "allo:alarms",
    stream_prefix: Annotated[
        str,
        typer.Option("--stream-prefix", help="Engine stream name: <prefix>.<partition>."),
    ] = "region",
    count: Annotated[
        int, typer.Option("--count", min=1, max=100_000, help="Entries read per batch, at most.")
    ] = 500,
    block_ms: Annotated[
        int,
        typer.Option(
            "--block-ms", min=1, max=10_000, help="How long a read waits for new entries."
        ),
    ] = 500,
    lease_seconds: Annotated[
        float,
        typer.Option(
            "--lease-seconds",
            min=0.5,
            max=600,
            help="Time to live of the partition's lease: a second consumer of the partition "
            "is refused; one restarted after kill -9 waits this long at most.",
        ),
    ] = 10.0,
    checkpoint: Annotated[
        str,
        typer.Option(
            "--checkpoint",
            help="SQLite WAL checkpoints: 'background' (a thread of the consumer, off the "
            "commit path) or 'inline' (SQLite's own, inside a commit every 1,000 pages).",
        ),
    ] = "background",
    gc_mode: Annotated[
        str,
        typer.Option(
            "--gc",
            help="'quiet': the engine's state frozen out of the garbage collector "
            "(gc.freeze() after warm-up and after every batch); 'default': Python's settings.",
        ),
    ] = "quiet",
    latency_histogram: Annotated[
        bool,
        typer.Option(
            "--latency-histogram",
            help="Put the latency histogram (0.1 ms buckets) in the JSON, for benchmarks.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Feed one partition's stream into its engine until SIGTERM (kill -9 safe).

    Alarms are acknowledged only after the engine committed them: after a crash, start it
    again; what was not acknowledged is read again and nothing is counted twice. The
    database is the knowledge store's (ALLO_DATABASE_URL, or the SQLite file in
    ALLO_DATA_DIR).
    """
    from allo.cli.common import settings as load
    from allo.clock import SystemClock
    from allo.errors import InvalidInputError
    from allo.noc.broker import (
        PartitionConsumer,
        StreamKeys,
        connect,
        engine_stream,
        partition_topology,
    )
    from allo.noc.broker.consumer import CHECKPOINT_MODES, GC_MODES
    from allo.noc.causal import CausalGraph
    from allo.noc.engine import NocEngine
    from allo.noc.store import SqlNocStore

    config = load()
    stop = _Stop()
    with handle_errors():
        if partition >= partitions:
            raise InvalidInputError(
                f"--partition {partition} is not one of 0..{partitions - 1} (--partitions "
                f"{partitions})"
            )
        if checkpoint not in CHECKPOINT_MODES or gc_mode not in GC_MODES:
            raise InvalidInputError(
                f"--checkpoint must be one of {', '.join(CHECKPOINT_MODES)} (got "
                f"{checkpoint!r}) and --gc one of {', '.join(GC_MODES)} (got {gc_mode!r})"
            )
        keys = StreamKeys(key_prefix)
        topo = _load_topology(topology)
        digest = partition_topology(topo, partitions).digest()
        learned = CausalGraph.load(graph) if graph is not None else None
        client = connect(redis_url)
        engine = NocEngine(
            SqlNocStore(config.resolved_database_url, durable=config.noc_durable_commits),
            SystemClock(),
            stream=engine_stream(partition, stream_prefix),
            source="broker",
            topology=topo,
            graph=learned,
            history=0,
        )
        if learned is not None:
            learned.report_cycle(str(graph), engine.report)
        consumer = PartitionConsumer(
            client,
            engine,
            partition,
            partitions,
            keys=keys,
            count=count,
            block_ms=block_ms,
            lease_seconds=lease_seconds,
            checkpoint=checkpoint,
            gc_mode=gc_mode,
        )
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        started = time.perf_counter()
        try:
            consumer.start(digest)
            for warning in consumer.report.warnings:
                errors.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
            if learned is None:
                errors.print(
                    "note: no --graph, so no causal correlation (learn one with `allo noc learn`)",
                    highlight=False,
                )
            errors.print(
                f"partition {partition}/{partitions}: reading {consumer.key} into stream "
                f"{engine.stream} ({consumer.report.recovered_entries} pending entries "
                "recovered); SIGTERM stops",
                highlight=False,
            )
            report = consumer.run(lambda: stop.requested)
        finally:
            consumer.release()
            engine.close()
            client.close()
    summary = {
        **report.to_json(buckets=latency_histogram),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if as_json:
        print(json.dumps(summary))
        return
    console.print(
        f"partition {partition}: {report.entries} entries, {report.accepted} alarms accepted, "
        f"{report.already_stored} already stored, {report.dead_letters} dead letters "
        f"(kept in {keys.dead}); p99 {report.latency.percentile(0.99)} ms",
        highlight=False,
    )
