"""Streaming through Redis Streams: N consumer processes, one per topology region (issue 5).

    python benchmarks/noc_broker.py [--data ../shared/data/alarms/pcic2021-24V_439N_Microwave]
        [--repeat 10] [--partitions 2] [--rate 10000] [--graph GRAPH] [--json]
        [--checkpoint background|inline] [--gc quiet|default]

The set replayed ``--repeat`` times (each copy shifted in time, with its own ids) is
published by an in-process :class:`~allo.noc.broker.AlarmPublisher` to a fresh
``redis-server`` on loopback, paced at ``--rate`` alarms per second (``0``: as fast as
possible), while ``--partitions`` ``allo noc consume`` processes (real processes, each with
its own SQLite file unless ``--shared-database``) ingest them. Figures:

- ``stream_alarms_per_second``: alarms / (last engine commit - first XADD), so published
  to all committed; at a paced rate it can be no more than that rate;
- ``stream_p50_ms``, ``stream_p99_ms``: per alarm, from its XADD (the millisecond in its
  entry id) to the end of the engine commit that contains it, merged over all consumers;
- ``stream_consumers``: where each consumer's time went: ``timings`` (engine ingest and
  XACK per batch), ``gc`` (collections by generation: count, objects found, total and
  longest pause), ``checkpoints`` (the background WAL checkpointer), ``slow_batches``
  (ingests over 50 ms, with the GC time inside them); ``--checkpoint inline --gc
  default`` runs the consumers as before the tail fixes, for a comparison;
- ``stream_tail``: where the alarms over 50 ms were, from each consumer's per-second
  ``timeline`` (also in ``stream_consumers``: per second, its batches, their largest,
  the longest ingest, how old a batch's oldest entry was when read, GC and checkpoint
  time): per consumer, the share in the first 5 seconds and in seconds with a writer
  checkpoint, and the worst seconds (``t``: seconds since the first XADD);
- ``stream_publisher_nice``: the publisher's niceness (``--publisher-nice``, 10 by
  default). The publisher stands for the network's devices, which do not run on the
  engine's cores; here it shares two cores with the consumers and Redis. At niceness 0 it
  took its share of them whenever the host took CPU away, and the consumers fell behind;
  at 10 it is the one that waits, and its lag shows in ``stream_alarms_per_second``
  (latency counts from each alarm's ``XADD``, so an alarm not yet sent is not late);
- ``stream_per_partition``: the load each region got (regions balanced by device count,
  or by alarms with ``--balance-by-alarms``); ``partition_cut_share``: the share of
  topology links whose ends are in different regions.

:func:`measure` is the function the throughput benchmark can call with its own alarms.
Needs Debian's ``redis-server`` and ``pip install 'allo[broker]'``. Not run in CI.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from allo.domain.alarms import Alarm  # noqa: E402
from allo.noc.broker import (  # noqa: E402
    AlarmPublisher,
    LatencyHistogram,
    PublishReport,
    StreamKeys,
    connect,
    partition_topology,
)
from allo.noc.broker.streams import GROUP  # noqa: E402
from allo.noc.broker.tuning import GcPauses  # noqa: E402
from allo.noc.causal import CausalGraph, HawkesLearner  # noqa: E402
from allo.noc.sources import CsvSource  # noqa: E402
from allo.noc.topology import Topology  # noqa: E402
from allo.testing.redis import RedisServer  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "data" / "alarms" / "pcic2021-24V_439N_Microwave"


def copies(path: Path, repeat: int) -> list[Alarm]:
    """The file read ``repeat`` times, copy ``k`` shifted after the previous one."""
    base = list(CsvSource(path))
    times = [a.raised_at for a in base if math.isfinite(a.raised_at)]
    span = max(times) - min(times) + 86400.0
    out: list[Alarm] = []
    for k in range(repeat):
        shift = k * span
        out.extend(
            replace(
                a,
                id=f"{k}-{a.id}",
                raised_at=a.raised_at + shift,
                cleared_at=None if a.cleared_at is None else a.cleared_at + shift,
                row=a.row + k * 1_000_000,
            )
            for a in base
        )
    return out


#: what the benchmark keeps of each consumer's JSON summary, besides its latency
CONSUMER_FIGURES = ("timings", "gc", "checkpoints", "batches", "slow_batches", "timeline")


def _wait_for_consumers(client: Any, keys: StreamKeys, partitions: int, seconds: float) -> None:
    """Until each partition's consumer has registered with its group (it is reading)."""
    import redis

    deadline = time.monotonic() + seconds
    waiting = set(range(partitions))
    while waiting and time.monotonic() < deadline:
        for partition in list(waiting):
            try:
                names = [
                    c["name"] for c in client.xinfo_consumers(keys.partition(partition), GROUP)
                ]
            except redis.ResponseError:  # stream or group not created yet
                continue
            if f"partition-{partition}".encode() in names:
                waiting.discard(partition)
        time.sleep(0.05)
    if waiting:
        raise RuntimeError(f"consumers of partitions {sorted(waiting)} did not start")


def _settled(client: Any, keys: StreamKeys, partitions: int) -> bool:
    for partition in range(partitions):
        for group in client.xinfo_groups(keys.partition(partition)):
            if group["lag"] != 0 or group["pending"] != 0:
                return False
    return True


def _cpu_seconds(pid: int | None) -> float | None:
    """CPU seconds (user + system) a process has used so far, from ``/proc`` (Linux);
    ``None`` elsewhere."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stolen_seconds() -> float | None:
    """CPU seconds the hypervisor gave to other guests so far, all cores together
    (``steal`` in ``/proc/stat``, Linux); ``None`` elsewhere. On a shared virtual machine
    the same run's tail latency goes from tens to hundreds of milliseconds with it."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    return int(fields[8]) / os.sysconf("SC_CLK_TCK")


def measure(
    alarms: list[Alarm],
    partitions: int,
    graph_path: Path,
    topology_path: Path | None,
    folder: Path,
    *,
    rate: float | None = 10_000.0,
    count: int = 500,
    shared_database: bool = False,
    balance_by_alarms: bool = False,
    timeout: float = 1800.0,
    consumer_options: tuple[str, ...] = (),
    publisher_nice: int = 10,
) -> dict[str, object]:
    """Publish ``alarms`` through a fresh Redis to ``partitions`` consumer processes and
    return the streaming figures (see the module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    server = RedisServer(folder / "redis")
    server.start()
    consumers: list[subprocess.Popen[str]] = []
    try:
        keys = StreamKeys()
        client = connect(server.url)
        topology = Topology.load(topology_path) if topology_path else None
        weights: dict[str, float] | None = None
        if balance_by_alarms:  # the regions' alarm volume, as `publish --balance-by` does
            weights = {}
            for alarm in alarms:
                weights[alarm.device] = weights.get(alarm.device, 1.0) + 1.0
        split = partition_topology(topology, partitions, weights=weights)
        common = ["--partitions", str(partitions), "--redis", server.url]
        if topology_path:
            common += ["--topology", str(topology_path)]
        for partition in range(partitions):
            database = folder / ("allo.db" if shared_database else f"partition-{partition}.db")
            env = {
                **os.environ,
                "ALLO_DATA_DIR": str(folder / "data"),
                "ALLO_DATABASE_URL": f"sqlite:///{database}",
                "ALLO_EMBEDDER": "fake",
            }
            command = [sys.executable, "-m", "allo.cli", "noc", "consume", *common]
            command += ["--partition", str(partition), "--graph", str(graph_path)]
            command += ["--count", str(count), "--latency-histogram", "--json"]
            command += list(consumer_options)
            consumers.append(
                subprocess.Popen(
                    command,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=(folder / f"consumer-{partition}.log").open("w"),
                    text=True,
                )
            )
        _wait_for_consumers(client, keys, partitions, 120)
        publisher = AlarmPublisher(client, split, keys=keys)
        # This load generator holds every alarm of the run in memory (millions of
        # objects), unlike a producer that streams its source: a gen-2 collection walked
        # them all, stopping the publisher for up to 200 ms, after which it sent the
        # late alarms in one burst to both consumers. Frozen, they are never walked.
        gc.collect()
        publish_cpu = time.process_time()
        stolen = _stolen_seconds()
        publisher_gc = GcPauses()
        gc.freeze()
        try:
            report = _publish_niced(publisher, alarms, rate, publisher_nice)
        finally:
            publisher_gc.close()
            gc.unfreeze()
        publish_cpu = time.process_time() - publish_cpu
        deadline = time.monotonic() + timeout
        while not _settled(client, keys, partitions):
            if time.monotonic() > deadline:
                raise RuntimeError("the consumers did not catch up in time")
            time.sleep(0.02)
        redis_cpu = _cpu_seconds(server.process.pid if server.process else None)
        stolen_after = _stolen_seconds()
        if stolen is not None and stolen_after is not None:
            stolen = stolen_after - stolen
        summaries = []
        for process in consumers:
            process.send_signal(signal.SIGTERM)
            out, _ = process.communicate(timeout=120)
            if process.returncode != 0:
                raise RuntimeError(f"a consumer failed, see {folder}/consumer-*.log")
            summaries.append(json.loads(out))
        client.close()
    finally:
        for process in consumers:
            if process.poll() is None:
                process.kill()
        server.stop()
    latency = LatencyHistogram()
    for summary in summaries:
        latency.merge(LatencyHistogram.from_json(summary["latency"]))
    assert report.first_sent is not None
    last = max(s["last_commit"] for s in summaries if s["last_commit"] is not None)
    seconds = last - report.first_sent
    accepted = sum(s["accepted"] for s in summaries)
    return {
        "stream_via": "redis-streams",
        "stream_partitions": partitions,
        "stream_target_rate": rate,
        "stream_alarms": len(alarms),
        "stream_accepted": accepted,
        "stream_dead_letters": sum(s["dead_letters"] for s in summaries),
        "stream_alarms_per_second": round(len(alarms) / seconds, 1),
        "stream_p50_ms": latency.percentile(0.50),
        "stream_p99_ms": latency.percentile(0.99),
        "stream_max_ms": round(latency.max_ms, 2),
        "stream_publish_seconds": round(report.seconds, 2),
        "stream_seconds": round(seconds, 2),
        "stream_per_partition": report.per_partition,
        "stream_batches": sum(s["batches"] for s in summaries),
        # the consumers' CPU per alarm (whole processes): what pacing and batch size change
        "stream_consumer_cpu_us_per_alarm": round(
            sum(float(s.get("cpu_seconds") or 0.0) for s in summaries) / len(alarms) * 1e6, 1
        ),
        # the other two on the same cores: the publisher (this process: encoding and XADD)
        # and redis-server (``None`` where /proc cannot tell)
        "stream_publisher_cpu_us_per_alarm": round(publish_cpu / len(alarms) * 1e6, 1),
        "stream_publisher_gc": publisher_gc.to_json(),
        "stream_publisher_nice": publisher_nice,
        # CPU time the host took from this machine's cores during the run (shared VMs)
        "stream_cpu_stolen_share": (
            None if stolen is None else round(stolen / (seconds * (os.cpu_count() or 1)), 3)
        ),
        "stream_redis_cpu_us_per_alarm": (
            None if redis_cpu is None else round(redis_cpu / len(alarms) * 1e6, 1)
        ),
        "stream_shared_database": shared_database,
        "stream_balanced_by_alarms": balance_by_alarms,
        "stream_consumers": [
            {
                "latency": {k: v for k, v in s["latency"].items() if k != "buckets"},
                "cpu_seconds": s.get("cpu_seconds"),
                **{key: s.get(key) for key in CONSUMER_FIGURES},
            }
            for s in summaries
        ],
        "stream_tail": tail(summaries, report.first_sent),
        "partition_cut_share": (
            round(split.quality(topology).cut_share, 4) if topology is not None else None
        ),
    }


def _publish_niced(
    publisher: AlarmPublisher, alarms: list[Alarm], rate: float | None, nice: int
) -> PublishReport:
    """``publisher.publish`` on a thread of its own whose niceness is raised by ``nice``
    (Linux sets it per thread; the rest of this process keeps its own, which a process
    without privileges could not lower back)."""
    outcome: list[PublishReport | BaseException] = []

    def run() -> None:
        try:
            if nice:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
            outcome.append(publisher.publish(alarms, rate=rate))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    thread = threading.Thread(target=run, name="publisher")
    thread.start()
    thread.join()
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def tail(summaries: list[dict[str, Any]], start: float, top: int = 8) -> dict[str, object]:
    """Where the alarms over 50 ms were, from the consumers' timelines: per consumer, in
    the first 5 seconds, in seconds where the writer checkpointed inline, and the ``top``
    worst seconds (``t``: seconds since the first XADD) with what happened in them."""
    slow = [sum(int(s["over_50_ms"]) for s in c.get("timeline") or []) for c in summaries]
    rows = [
        {"consumer": index, "t": int(second["second"]) - int(start), **second}
        for index, summary in enumerate(summaries)
        for second in summary.get("timeline") or []
    ]
    total = sum(slow) or 1
    early = sum(int(r["over_50_ms"]) for r in rows if int(r["t"]) < 5)
    inline = sum(int(r["over_50_ms"]) for r in rows if r["inline_checkpoints"])
    worst = sorted(rows, key=lambda r: -int(r["over_50_ms"]))[:top]
    for row in worst:
        row.pop("second")
    return {
        "over_50_ms_per_consumer": slow,
        "share_in_first_5_s": round(early / total, 3),
        "share_in_inline_checkpoint_seconds": round(inline / total, 3),
        "worst_seconds": worst,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument(
        "--rate", type=float, default=10_000.0, help="alarms per second; 0: as fast as possible"
    )
    parser.add_argument("--count", type=int, default=500, help="entries per consumer read")
    parser.add_argument(
        "--checkpoint",
        choices=("background", "inline"),
        default="background",
        help="the consumers' SQLite checkpoints (inline: SQLite's auto-checkpoint in commits)",
    )
    parser.add_argument(
        "--gc", choices=("quiet", "default"), default="quiet", help="the consumers' GC mode"
    )
    parser.add_argument("--limit", type=int, default=0, help="publish only the first N alarms")
    parser.add_argument(
        "--publisher-nice",
        type=int,
        default=10,
        help="niceness of the publisher's thread (0: it competes with the consumers)",
    )
    parser.add_argument("--shared-database", action="store_true")
    parser.add_argument(
        "--balance-by-alarms",
        action="store_true",
        help="balance regions by their alarms in the published set, not by device count",
    )
    parser.add_argument("--graph", type=Path, help="a graph from `allo noc learn` (else learned)")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args()
    if not 0 <= args.publisher_nice <= 19:
        parser.error(
            f"--publisher-nice {args.publisher_nice}: give 0 to 19 (raising it needs no privilege)"
        )
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed: apt-get install -y redis-server")

    path = args.data / "Alarm.csv"
    topology_path = args.data / "Topology.npy"
    folder = Path(tempfile.mkdtemp(prefix="noc-broker-bench-"))
    try:
        figures: dict[str, object] = {
            "set": args.data.name,
            "repeat": args.repeat,
            "cpus": os.cpu_count(),
        }
        if args.graph:
            graph_path = args.graph
        else:
            started = time.perf_counter()
            topology = Topology.load(topology_path) if topology_path.is_file() else None
            graph = HawkesLearner().learn(list(CsvSource(path)), topology)
            graph_path = folder / "graph.json"
            CausalGraph.save(graph, graph_path)
            figures["learn_seconds"] = round(time.perf_counter() - started, 2)
        alarms = copies(path, args.repeat)
        if args.limit:
            alarms = alarms[: args.limit]
        figures.update(
            measure(
                alarms,
                args.partitions,
                graph_path,
                topology_path if topology_path.is_file() else None,
                folder / "run",
                rate=args.rate or None,
                count=args.count,
                shared_database=args.shared_database,
                balance_by_alarms=args.balance_by_alarms,
                consumer_options=("--checkpoint", args.checkpoint, "--gc", args.gc),
                publisher_nice=args.publisher_nice,
            )
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:28} {value}")


if __name__ == "__main__":
    main()
