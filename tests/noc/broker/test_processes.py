"""``allo noc publish`` and two ``allo noc consume`` processes on a real Redis; one consumer
is killed with ``kill -9`` mid-stream and started again: nothing lost, nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from allo.noc.broker import engine_stream, partition_topology
from allo.noc.causal import CausalGraph
from allo.testing.redis import REDIS_MARKS, RedisServer
from tests.noc.broker.helpers import GRAPH, TOPOLOGY, alarms

pytestmark = REDIS_MARKS
ROWS = 3000


def stored(database: Path) -> list[tuple[str, str, str, str | None]]:
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as c:
            rows = c.execute(text("SELECT alarm_id, stream, device, incident_id FROM noc_alarms"))
            return [(str(a), str(s), str(d), i) for a, s, d, i in rows]
    finally:
        engine.dispose()


def settled(client: Any, partitions: int) -> bool:
    """Every entry of every partition delivered and acknowledged."""
    for partition in range(partitions):
        for group in client.xinfo_groups(f"allo:alarms:{partition}"):
            if group["lag"] != 0 or group["pending"] != 0:
                return False
    return True


def test_two_consumers_one_killed_mid_stream(redis: RedisServer, tmp_path: Path) -> None:
    from allo.noc.broker import connect

    sent = alarms(ROWS, seed=9)
    csv = tmp_path / "alarms.csv"
    csv.write_text(
        "id,device,alarm_type,raised_at,cleared_at\n"
        + "".join(f"{a.id},{a.device},{a.alarm_type},{a.raised_at},{a.cleared_at}\n" for a in sent),
        encoding="utf-8",
    )
    topology = tmp_path / "topology.json"
    edges = [[a, b] for a in TOPOLOGY.devices for b in TOPOLOGY.neighbours(a) if a < b]
    topology.write_text(json.dumps({"edges": edges}), encoding="utf-8")
    graph = tmp_path / "graph.json"
    CausalGraph.save(GRAPH, graph)
    database = tmp_path / "data" / "allo.db"
    env = {**os.environ, "ALLO_DATA_DIR": str(tmp_path / "data"), "ALLO_EMBEDDER": "fake"}
    noc = [sys.executable, "-m", "allo.cli", "noc"]
    common = ["--partitions", "2", "--redis", redis.url, "--topology", str(topology)]

    def consumer(partition: int) -> subprocess.Popen[str]:
        options = ["--partition", str(partition), "--graph", str(graph), "--count", "50"]
        options += ["--lease-seconds", "2"]  # the restart after kill -9 waits that at most
        return subprocess.Popen(
            [*noc, "consume", *options, *common, "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first, second = consumer(0), consumer(1)
    publisher = subprocess.Popen(
        [*noc, "publish", str(csv), *common, "--rate", "1000", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    region = engine_stream(0)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        try:
            if sum(1 for r in stored(database) if r[1] == region) >= 300:
                break
        except Exception:  # schema not there yet
            pass
        time.sleep(0.02)
    assert first.poll() is None, first.stderr.read() if first.stderr else ""
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    killed = Counter(r[1] for r in stored(database))[region]
    assert killed >= 300
    restarted = consumer(0)

    out, err = publisher.communicate(timeout=180)
    assert publisher.returncode == 0, err
    published = json.loads(out)
    assert published["published"] == ROWS and published["partition_quality"]["cut_edges"] == 0

    client = connect(redis.url)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not settled(client, 2):
        time.sleep(0.1)
    assert settled(client, 2)
    client.close()

    # a second consumer of a partition that is being consumed is refused, naming the holder
    duplicate = consumer(1)
    out, err = duplicate.communicate(timeout=60)
    assert duplicate.returncode != 0 and "held by another consumer" in " ".join(err.split())
    summaries = []
    for process in (restarted, second):
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        summaries.append(json.loads(out))

    rows = stored(database)
    ids = Counter(r[0] for r in rows)
    assert len(rows) == ROWS and set(ids) == {a.id for a in sent} and max(ids.values()) == 1
    split = partition_topology(TOPOLOGY, 2)
    assert all(stream == engine_stream(split.partition_of(d)) for _, stream, d, _ in rows)
    assert all(incident is not None for *_, incident in rows)
    after_restart, other = summaries
    assert 0 < killed < published["per_partition"][0]  # killed mid-stream
    # what the killed process committed was skipped, whatever it had not was taken
    assert after_restart["accepted"] == published["per_partition"][0] - killed
    assert after_restart["already_stored"] == after_restart["entries"] - after_restart["accepted"]
    assert other["accepted"] == published["per_partition"][1] and other["dead_letters"] == 0
    # related alarms met: some incidents span adjacent devices of one region
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as c:
        spread = c.execute(text("SELECT max(device_count) FROM noc_incidents")).scalar_one()
        sizes = c.execute(text("SELECT sum(size) FROM noc_incidents")).scalar_one()
    engine.dispose()
    assert spread >= 2 and sizes == ROWS
