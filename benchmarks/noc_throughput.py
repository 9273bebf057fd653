"""NOC throughput, side by side with Prometheus Alertmanager (issue 5, "Speed, side by side").

    python benchmarks/noc_throughput.py [--data ../shared/data/alarms/pcic2021-24V_439N_Microwave]
        [--repeat 10] [--partitions 2] [--stream-alarms 20000] [--clients 8] [--ws-alarms 50000]
        [--ws-connections 8] [--ws-window 32] [--ws-rate 0] [--skip batch,stream,ws,peer]
        [--rounds 3] [--graph GRAPH] [--json]

The figures, measured in the same run on the same alarms (the set replayed ``--repeat``
times over, each copy shifted in time so that nothing is a duplicate of another copy):

- ``alarms_per_second``: batch replay from the source file to incidents persisted
  (SQLite, every stage on, the learned graph and the topology), ``allo noc ingest``'s path
  (``--partitions N``: one process per topology region, streams ``bench.<p>``, when the
  regions cut no link, else one process; ``batch_processes`` and ``batch_plan`` say which).
  The copies are first written to a CSV file, untimed; the clock runs from the engine's
  start (migration included) through reading and parsing that file to the last commit.
  ``--partitions 2,1`` also runs one process, its figures suffixed ``_p1``.
  ``batch_cpu_us_per_alarm``: CPU of the replay (its processes included) per alarm, which
  a shared machine's load does not change as it changes wall-clock figures.
- ``stream_alarms_per_second`` and ``stream_p99_ms``: alarms posted one per request to
  ``POST /v1/alarms`` of a real server (uvicorn, in its own process, on loopback) by
  ``--clients`` keep-alive connections; the latency is from sending the alarm to the
  response, which comes once the alarm is persisted and its incident updated. Concurrent
  requests share one engine step and one transaction (group commit):
  ``stream_transactions`` says how many steps served them. With ``--stream-batch N``
  the same alarms are streamed again, N per request (a list):
  ``stream_batchN_alarms_per_second`` and ``stream_batchN_p99_ms`` (latency of a request,
  so of its first alarm). Each mode gets a fresh server and database of its own.
- ``stream_ws_alarms_per_second`` and ``stream_ws_p99_ms``: the same alarms, still one by
  one, but one per WebSocket frame on ``WS /v1/alarms/ws`` from ``--ws-connections``
  producer sockets (one process, asyncio, the ``websockets`` client, no compression), each
  with at most ``--ws-window`` frames unacknowledged; the latency of a frame is from its
  send to the ack that covers it, which comes once its transaction has committed.
  ``--ws-rate R`` paces the producers at R alarms/s in all (a late frame is timed from its
  scheduled time, so a server that falls behind shows in the latency). Where the time
  goes: ``stream_ws_server_cpu_us_per_alarm`` (the server process, from ``/proc``), of
  which ``stream_ws_engine_us_per_alarm`` inside engine steps (wall time), and the
  producers' ``stream_ws_client_cpu_us_per_alarm``, on the same cores.
- ``peer_alertmanager_aps``: Debian's ``prometheus-alertmanager`` started on loopback
  (grouping by device), fed the same alarms through ``POST /api/v2/alerts`` in batches of
  500; ``null`` with the reason when it is not installed. ``peer_cpu_us_per_alarm``: its
  own CPU while ingesting (``/proc``), to set beside ``batch_cpu_us_per_alarm``.
- ``batch_vs_peer``: ``alarms_per_second`` over ``peer_alertmanager_aps``. The batch
  replay and the peer run ``--rounds`` times (3 by default), alternately, each side's
  figures being those of its median round and ``batch_vs_peer`` the median of the
  rounds' ratios (the lower middle one for an even N; every round is listed in
  ``side_by_side_rounds``): on a shared machine whose speed drifts between minutes, one
  round each can favour either side. The batch replay and the peer run first, then the
  streaming parts (before ``--rounds``, the peer ran last: older figures were taken in
  that order).

Learning the graph is not timed (``learn_seconds``). Not run in CI.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import os
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from allo.clock import SystemClock  # noqa: E402
from allo.domain.alarms import Alarm  # noqa: E402
from allo.noc.causal import CausalGraph, HawkesLearner  # noqa: E402
from allo.noc.engine import NocEngine  # noqa: E402
from allo.noc.replay import plan_partitions, replay, replay_partitioned  # noqa: E402
from allo.noc.sources import CsvSource  # noqa: E402
from allo.noc.store import SqlNocStore  # noqa: E402
from allo.noc.topology import Topology  # noqa: E402

DEFAULT = ROOT.parent / "shared" / "data" / "alarms" / "pcic2021-24V_439N_Microwave"


def copies(path: Path, repeat: int, span: float) -> list[Alarm]:
    """The file read ``repeat`` times, copy ``k`` shifted by ``k * span`` seconds."""
    out: list[Alarm] = []
    for k in range(repeat):
        shift = k * span
        for alarm in CsvSource(path):
            out.append(
                replace(
                    alarm,
                    id=f"{k}-{alarm.id}",
                    raised_at=alarm.raised_at + shift,
                    cleared_at=None if alarm.cleared_at is None else alarm.cleared_at + shift,
                    row=alarm.row + k * 1_000_000,
                )
            )
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: the secrets of the benchmark's server (fresh each run; given to it through its environment)
OPERATOR_TOKEN = secrets.token_urlsafe(24)
INGEST_TOKEN = secrets.token_urlsafe(24)
OPERATOR = {"X-NOC-Token": OPERATOR_TOKEN}
SOURCE = {"Authorization": f"Bearer {INGEST_TOKEN}"}


def wait_for(port: int, path: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path, headers=OPERATOR)
            if connection.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port}{path}")


# -- batch --------------------------------------------------------------------------------


def write_copies(path: Path, repeat: int, span: float, out: Path) -> int:
    """The file written ``repeat`` times into ``out`` (PCIC columns), copy ``k`` shifted by
    ``k * span`` seconds, so that the timed replay starts from a source file as
    ``allo noc ingest`` does and no copying of alarms is counted as Allo's work. Times are
    written with ``repr`` (exact round trip); rows are numbered anew, ids are ``row-N``."""
    rows = 0
    with out.open("w", encoding="utf-8", newline="") as handle:
        handle.write("alarm_id,device_id,start_timestamp,end_timestamp\n")
        source = list(CsvSource(path))
        for k in range(repeat):
            shift = k * span
            lines = []
            for a in source:
                end = "" if a.cleared_at is None else repr(a.cleared_at + shift)
                lines.append(f"{a.alarm_type},{a.device},{a.raised_at + shift!r},{end}\n")
            handle.writelines(lines)
            rows += len(lines)
    return rows


def _cpu_with_children() -> float:
    """CPU seconds (user + system) of this process and of its children that ended."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def batch(
    path: Path,
    topology: Topology | None,
    graph: CausalGraph,
    folder: Path,
    partitions: int,
) -> dict[str, object]:
    """Replay ``path`` (the copies, already written) into a fresh SQLite file, timed from
    the engine's start (migration included) to the last incident persisted; with
    ``partitions`` > 1, one process per topology region when no link is cut."""
    plan = plan_partitions(topology, partitions)
    url = f"sqlite:///{folder / f'batch-{partitions}.db'}"
    cpu_started = _cpu_with_children()
    started = time.perf_counter()
    if plan.partitioning is None:
        clock = SystemClock()
        engine = NocEngine(
            SqlNocStore(url),
            clock,
            stream="bench",
            source="file",
            topology=topology,
            graph=graph,
            history=0,
        )
        engine.warm_up()
        result = replay(CsvSource(path), engine, clock)
        seconds = time.perf_counter() - started
        engine.close()
        alarms, closed = result.alarms, len(result.incidents)
    else:
        split = replay_partitioned(path, url, "bench", plan, topology=topology, graph=graph)
        seconds = time.perf_counter() - started
        alarms, closed = split.alarms, split.incidents
    cpu = _cpu_with_children() - cpu_started
    store = SqlNocStore(url)
    counts = store.counts()
    store.close()
    return {
        "alarms": alarms,
        "incidents": counts["incidents"],
        "reduction": round(1 - counts["incidents"] / alarms, 4),
        "alarms_per_second": round(alarms / seconds, 1),
        "batch_seconds": round(seconds, 2),
        # CPU of this process and of its finished children: Allo's work, whatever the load
        "batch_cpu_us_per_alarm": round(cpu / alarms * 1e6, 1),
        "batch_processes": plan.partitions,
        "batch_plan": plan.reason,
        "persisted_alarms": counts["final_alarms"],
        "pipeline_only_closed": closed,
    }


# -- streaming over HTTP -------------------------------------------------------------------

SERVER = """
import sys, uvicorn
sys.path.insert(0, {src!r})
from allo.config import EmbedderKind, Settings
from allo.noc.causal import CausalGraph
from allo.clock import SystemClock
from allo.noc.engine import NocEngine
from allo.noc.store import SqlNocStore
from allo.noc.topology import Topology
from allo.web.app import create_app
settings = Settings(data_dir={data!r}, embedder=EmbedderKind.NONE)
from pathlib import Path
topology = Topology.load(Path({topology!r})) if {topology!r} else None
engine = NocEngine(SqlNocStore(settings.resolved_database_url), SystemClock(), stream="live",
                   topology=topology, graph=CausalGraph.load(Path({graph!r})))
engine.warm_up()
uvicorn.run(create_app(settings, noc_engine=engine), host="127.0.0.1", port={port},
            log_level="warning", access_log=False)
"""


def side_by_side(
    run_batch: Callable[[Path], dict[str, object]],
    run_peer: Callable[[Path], dict[str, object]] | None,
    folder: Path,
    rounds: int,
) -> dict[str, object]:
    """The batch replay and the peer, one after the other, ``rounds`` times, each round in
    a fresh folder (database, Alertmanager storage). A shared machine's speed drifts over
    minutes (other tenants, stolen CPU): alternating puts both sides under the same
    drift, and each side's figures are those of its median round (the lower middle one
    for an even count), every round being listed in ``side_by_side_rounds``."""
    batches: list[dict[str, object]] = []
    peers: list[dict[str, object]] = []
    for index in range(rounds):
        place = folder / f"round-{index}"
        place.mkdir()
        batches.append(run_batch(place))
        if run_peer is not None:
            peers.append(run_peer(place))
        shutil.rmtree(place, ignore_errors=True)
    figures = dict(_median_round(batches, "alarms_per_second"))
    listed: list[dict[str, float | None]] = []
    for index, ours in enumerate(batches):
        aps = _number(ours["alarms_per_second"])
        if not peers:
            listed.append({"alarms_per_second": aps})
            continue
        peer_aps = _number(peers[index].get("peer_alertmanager_aps"))
        ratio = round(aps / peer_aps, 3) if aps is not None and peer_aps else None
        listed.append({"alarms_per_second": aps, "peer_alertmanager_aps": peer_aps, "ratio": ratio})
    if peers:
        figures.update(_median_round(peers, "peer_alertmanager_aps"))
        ratios = [r for row in listed if (r := row["ratio"]) is not None]
        figures["batch_vs_peer"] = statistics.median_low(ratios) if ratios else None
    if rounds > 1:
        figures["side_by_side_rounds"] = listed
    return figures


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _median_round(rounds: list[dict[str, object]], key: str) -> dict[str, object]:
    """The round whose ``key`` is the median (lower middle); without any figure (the peer
    not installed) the first round, which says why."""
    measured = [(value, r) for r in rounds if (value := _number(r.get(key))) is not None]
    if not measured:
        return rounds[0]
    middle = statistics.median_low(value for value, _ in measured)
    return next(r for value, r in measured if value == middle)


def _items(alarms: list[Alarm]) -> list[dict[str, object]]:
    return [
        {
            "id": a.id,
            "device": a.device,
            "alarm_type": a.alarm_type,
            "raised_at": a.raised_at,
            "cleared_at": a.cleared_at,
        }
        for a in alarms
    ]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _p99(latencies: list[float]) -> float:
    flat = sorted(latencies)
    return flat[min(len(flat) - 1, math.ceil(0.99 * len(flat)) - 1)]


@contextlib.contextmanager
def server(
    folder: Path, name: str, graph_path: Path, topology_path: Path | None
) -> Iterator[tuple[int, int]]:
    """A fresh ``allo`` server (uvicorn, its own process and database): (port, pid)."""
    port = free_port()
    code = SERVER.format(
        src=str(ROOT / "src"),
        data=str(folder / name),
        topology=str(topology_path) if topology_path else "",
        graph=str(graph_path),
        port=port,
    )
    log_path = folder / f"{name}.log"
    with log_path.open("wb") as log:
        env = {
            **os.environ,
            "ALLO_NOC_TOKEN": OPERATOR_TOKEN,
            "ALLO_NOC_INGEST_TOKEN": INGEST_TOKEN,
        }
        process = subprocess.Popen([sys.executable, "-c", code], stderr=log, env=env)
        try:
            try:
                wait_for(port, "/v1/noc/status")
            except RuntimeError as exc:
                raise RuntimeError(log_path.read_text()[-2000:]) from exc
            yield port, process.pid
        finally:
            process.terminate()
            process.wait(timeout=30)


def _status(port: int) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/v1/noc/status", headers=OPERATOR)
    status: dict[str, Any] = json.loads(connection.getresponse().read())
    return status


def stream(
    alarms: list[Alarm],
    clients: int,
    folder: Path,
    graph_path: Path,
    topology_path: Path | None,
    per_request: int = 1,
) -> dict[str, object]:
    prefix = "stream" if per_request == 1 else f"stream_batch{per_request}"
    items = _items(alarms)
    if per_request == 1:  # one alarm object per request, as before
        bodies = [json.dumps(item).encode() for item in items]
    else:  # a small list per request (``POST /v1/alarms`` takes lists)
        bodies = [
            json.dumps(items[i : i + per_request]).encode()
            for i in range(0, len(items), per_request)
        ]
    with server(folder, prefix, graph_path, topology_path) as (port, _):
        latencies: list[list[float]] = [[] for _ in range(clients)]
        errors: list[str] = []

        # alarms keep their order: client c sends alarms c, c + clients, ...
        def run(index: int) -> None:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            headers = {"Content-Type": "application/json", **SOURCE}
            for body in bodies[index::clients]:
                sent = time.perf_counter()
                connection.request("POST", "/v1/alarms", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                latencies[index].append(time.perf_counter() - sent)
                if response.status != 200:
                    errors.append(str(response.status))
            connection.close()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        flat = [x for per in latencies for x in per]
        status = _status(port)
    return {
        f"{prefix}_alarms": len(items),
        f"{prefix}_requests": len(bodies),
        f"{prefix}_clients": clients,
        f"{prefix}_alarms_per_second": round(len(items) / seconds, 1),
        f"{prefix}_p50_ms": round(statistics.median(flat) * 1000, 2),
        f"{prefix}_p99_ms": round(_p99(flat) * 1000, 2),
        f"{prefix}_errors": len(errors),
        f"{prefix}_stored_alarms": status["counts"]["alarms"],
        f"{prefix}_transactions": status.get("group_commit", {}).get("steps"),
    }


# -- streaming over one WebSocket per producer ---------------------------------------------


async def _produce(
    port: int, frames: list[str], window: int, interval: float, start: float
) -> tuple[list[float], int]:
    """One producer connection: frames sent one by one, at most ``window`` unacknowledged
    (and, when ``interval`` > 0, frame k not before ``start + k * interval``). Returns the
    latency of every frame (its send time, or its scheduled time when paced and late, to
    its ack) and the number of error frames received."""
    from websockets.asyncio.client import connect

    sent_at = [0.0] * len(frames)
    latencies: list[float] = []
    errors = 0
    room = asyncio.Semaphore(window)
    async with connect(
        f"ws://127.0.0.1:{port}/v1/alarms/ws",
        compression=None,
        max_queue=None,
        additional_headers=SOURCE,
    ) as socket:

        async def read_acks() -> None:
            nonlocal errors
            acked = 0
            while acked < len(frames):
                message = json.loads(await socket.recv())
                if message["type"] != "ack":
                    errors += 1
                    continue
                now = time.perf_counter()
                through = message["through"]
                for k in range(acked, through):
                    latencies.append(now - sent_at[k])
                    room.release()
                acked = through

        reader = asyncio.create_task(read_acks())
        for k, text in enumerate(frames):
            await room.acquire()
            if interval > 0:
                due = start + k * interval
                late = due - time.perf_counter()
                if late > 0.001:
                    await asyncio.sleep(late)
                sent_at[k] = min(due, time.perf_counter())
            else:
                sent_at[k] = time.perf_counter()
            await socket.send(text)
        await reader
    return latencies, errors


def stream_ws(
    alarms: list[Alarm],
    connections: int,
    window: int,
    rate: float,
    folder: Path,
    graph_path: Path,
    topology_path: Path | None,
) -> dict[str, object]:
    """Alarms one per frame on ``connections`` WebSockets (alarm i on connection
    i mod connections), each frame timed from its send to the ack that covers it."""
    frames = [json.dumps(item) for item in _items(alarms)]
    interval = connections / rate if rate > 0 else 0.0
    with server(folder, "stream_ws", graph_path, topology_path) as (port, pid):

        async def run() -> list[tuple[list[float], int]]:
            start = time.perf_counter() + 0.05
            return await asyncio.gather(
                *(
                    _produce(port, frames[c::connections], window, interval, start)
                    for c in range(connections)
                )
            )

        cpu_before, client_before = _cpu_seconds(pid), time.process_time()
        started = time.perf_counter()
        outcomes = asyncio.run(run())
        seconds = time.perf_counter() - started
        server_cpu = _cpu_seconds(pid) - cpu_before
        client_cpu = time.process_time() - client_before
        status = _status(port)
    flat = [x for latencies, _ in outcomes for x in latencies]
    group = status.get("group_commit", {})
    steps = group.get("steps") or 0
    return {
        "stream_ws_alarms": len(frames),
        "stream_ws_connections": connections,
        "stream_ws_window": window,
        "stream_ws_target_rate": rate or None,
        "stream_ws_alarms_per_second": round(len(frames) / seconds, 1),
        "stream_ws_p50_ms": round(statistics.median(flat) * 1000, 2),
        "stream_ws_p99_ms": round(_p99(flat) * 1000, 2),
        "stream_ws_errors": sum(errors for _, errors in outcomes),
        "stream_ws_acked": len(flat),
        "stream_ws_stored_alarms": status["counts"]["alarms"],
        "stream_ws_transactions": steps,
        "stream_ws_alarms_per_transaction": round(len(frames) / steps, 1) if steps else None,
        # where the time goes: server CPU per alarm, of which inside engine steps, and the
        # producers' own CPU (they share the machine)
        "stream_ws_server_cpu_us_per_alarm": round(server_cpu / len(frames) * 1e6, 1),
        "stream_ws_engine_us_per_alarm": round(group.get("step_seconds", 0) / len(frames) * 1e6, 1),
        "stream_ws_client_cpu_us_per_alarm": round(client_cpu / len(frames) * 1e6, 1),
    }


# -- the peer: Prometheus Alertmanager -----------------------------------------------------


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def alertmanager(alarms: list[Alarm], folder: Path) -> dict[str, object]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        return {
            "peer_alertmanager_aps": None,
            "peer_note": "not installed: apt-get install -y prometheus-alertmanager",
        }
    port = free_port()
    config = folder / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: none\n  group_by: [device]\n  group_wait: 30s\n"
        "  group_interval: 5m\n  repeat_interval: 4h\nreceivers:\n  - name: none\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={folder / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(port, "/-/ready")
        # Alertmanager rejects alerts that ended long ago: keep each alarm's duration but
        # place the whole set in the present (it only stores and groups, as the issue says)
        now = time.time()
        base = max(a.raised_at for a in alarms if math.isfinite(a.raised_at))
        payloads = []
        for start in range(0, len(alarms), 500):
            chunk = []
            for a in alarms[start : start + 500]:
                starts = now - (base - a.raised_at) / 1000.0
                chunk.append(
                    {
                        "labels": {"alertname": a.alarm_type, "device": a.device, "id": a.id},
                        "startsAt": _iso(starts),
                        "endsAt": _iso(now + 3600),
                    }
                )
            payloads.append(json.dumps(chunk).encode())
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/json"}
        cpu_before = _cpu_seconds(process.pid)
        started = time.perf_counter()
        failures = 0
        for body in payloads:
            connection.request("POST", "/api/v2/alerts", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            failures += response.status != 200
        seconds = time.perf_counter() - started
        cpu = _cpu_seconds(process.pid) - cpu_before
        version = subprocess.run([binary, "--version"], capture_output=True, text=True)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return {
        "peer_alertmanager_aps": round(len(alarms) / seconds, 1),
        # Alertmanager's own CPU while ingesting (from /proc; the client's is not counted)
        "peer_cpu_us_per_alarm": round(cpu / len(alarms) * 1e6, 1),
        "peer_batches": len(payloads),
        "peer_failed_batches": failures,
        "peer_version": (version.stdout or version.stderr).splitlines()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--stream-alarms", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--stream-batch",
        type=int,
        default=0,
        help="also stream N alarms per request (stream_batchN_* figures); 0: only one per request",
    )
    parser.add_argument(
        "--ws-alarms", type=int, default=50_000, help="alarms streamed over WebSockets (0: skip)"
    )
    parser.add_argument("--ws-connections", type=int, default=8, help="producer sockets")
    parser.add_argument(
        "--ws-window", type=int, default=32, help="unacknowledged frames per socket, at most"
    )
    parser.add_argument(
        "--ws-rate",
        type=float,
        default=0.0,
        help="pace the producers at this many alarms/s in all (0: as fast as acks allow)",
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated parts not to run: batch, stream (HTTP), ws, peer",
    )
    parser.add_argument(
        "--partitions",
        type=lambda text: [int(p) for p in text.split(",")],
        default=[2],
        help="batch replay processes (one per topology region, when no link is cut); "
        "a list such as 2,1 runs each, figures of the others suffixed _pN",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="run the batch replay and the peer this many times, alternately (medians; default 3)",
    )
    parser.add_argument("--graph", type=Path, help="a graph from `allo noc learn` (else learned)")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    args = parser.parse_args()
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}
    unknown = skip - {"batch", "stream", "ws", "peer"}
    if unknown:
        parser.error(f"--skip {', '.join(sorted(unknown))}: use batch, stream, ws or peer")
    if args.rounds is not None and "batch" in skip:
        parser.error("--rounds alternates the batch replay with the peer: do not skip batch")
    rounds = 3 if args.rounds is None else args.rounds
    if rounds < 1:
        parser.error(f"--rounds must be at least 1, got {rounds}")

    path = args.data / "Alarm.csv"
    topology_path = args.data / "Topology.npy"
    topology = Topology.load(topology_path) if topology_path.is_file() else None
    folder = Path(tempfile.mkdtemp(prefix="noc-bench-"))
    try:
        learn_started = time.perf_counter()
        if args.graph:
            graph = CausalGraph.load(args.graph)
            graph_path = args.graph
        else:
            graph = HawkesLearner().learn(list(CsvSource(path)), topology)
            graph_path = folder / "graph.json"
            graph.save(graph_path)
        learn_seconds = time.perf_counter() - learn_started
        times = [a.raised_at for a in CsvSource(path) if math.isfinite(a.raised_at)]
        span = max(times) - min(times) + 86400.0
        figures: dict[str, object] = {
            "set": args.data.name,
            "repeat": args.repeat,
            "cpus": os.cpu_count(),
            "learn_seconds": round(learn_seconds, 2),
        }
        alarms = copies(path, args.repeat, span)
        if "batch" not in skip:
            copied = folder / f"alarms-x{args.repeat}.csv"
            write_copies(path, args.repeat, span, copied)
            first, *others = args.partitions
            for partitions in dict.fromkeys(p for p in others if p != first):  # each once
                measured = batch(copied, topology, graph, folder, partitions)
                figures.update({f"{key}_p{partitions}": v for key, v in measured.items()})
            figures.update(
                side_by_side(
                    lambda place: batch(copied, topology, graph, place, first),
                    None if "peer" in skip else lambda place: alertmanager(alarms, place),
                    folder,
                    rounds,
                )
            )
        elif "peer" not in skip:
            figures.update(alertmanager(alarms, folder))
        if "stream" not in skip:
            figures.update(
                stream(
                    alarms[: args.stream_alarms],
                    args.clients,
                    folder,
                    graph_path,
                    topology_path if topology else None,
                )
            )
        if args.ws_alarms > 0 and "ws" not in skip:
            figures.update(
                stream_ws(
                    alarms[: args.ws_alarms],
                    args.ws_connections,
                    args.ws_window,
                    args.ws_rate,
                    folder,
                    graph_path,
                    topology_path if topology else None,
                )
            )
        if args.stream_batch > 1 and "stream" not in skip:
            figures.update(
                stream(
                    alarms[: args.stream_alarms],
                    args.clients,
                    folder,
                    graph_path,
                    topology_path if topology else None,
                    per_request=args.stream_batch,
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
