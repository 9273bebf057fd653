"""``kill -9`` during ``allo noc ingest``: a re-run loses nothing, counts nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, text

from allo.noc.causal import CausalGraph

ROWS = 3000


def _state(database: Path) -> dict[str, int]:
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as c:
        one = lambda sql: int(c.execute(text(sql)).scalar_one() or 0)  # noqa: E731
        state = {
            "alarms": one("SELECT count(*) FROM noc_alarms"),
            "distinct_rows": one("SELECT count(DISTINCT row) FROM noc_alarms"),
            # alarms whose place is final: not in an open incident of the pipeline
            "final": one(
                "SELECT count(*) FROM noc_alarms a WHERE NOT EXISTS (SELECT 1 FROM "
                "noc_incidents i WHERE i.id = a.incident_id AND i.state = 'open' "
                "AND i.kind = 'pipeline')"
            ),
            "without_incident": one("SELECT count(*) FROM noc_alarms WHERE incident_id IS NULL"),
            "incident_size": one("SELECT sum(size) FROM noc_incidents"),
            "open": one("SELECT count(*) FROM noc_incidents WHERE state = 'open'"),
            "orphans": one(
                "SELECT count(*) FROM noc_alarms a WHERE NOT EXISTS "
                "(SELECT 1 FROM noc_incidents i WHERE i.id = a.incident_id)"
            ),
        }
    engine.dispose()
    return state


def _history(
    tmp_path: Path, rows: int, *, devices: int, seed: int
) -> tuple[Path, Path, Path, dict[str, str]]:
    """A PCIC-format file (one alarm a second, 3 types in a chain), its graph, the data
    folder and the environment of an ``allo`` process that uses it."""
    rng = np.random.default_rng(seed)
    lines = ["alarm_id,device_id,start_timestamp,end_timestamp"]
    for second in range(rows):
        device = int(rng.integers(0, devices))
        lines.append(f"{int(rng.integers(0, 3))},{device},{second},{second}")
    alarms = tmp_path / "Alarm.csv"
    alarms.write_text("\n".join(lines) + "\n", encoding="utf-8")
    graph = tmp_path / "graph.json"
    CausalGraph.from_matrix(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]])).save(graph)
    data = tmp_path / "data"
    return alarms, graph, data, {**os.environ, "ALLO_DATA_DIR": str(data), "ALLO_EMBEDDER": "fake"}


def _kill_once_stored(process: subprocess.Popen[bytes], database: Path, alarms: int) -> None:
    """``kill -9`` the ingest once ``alarms`` alarms are stored (it must still be running)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if database.exists() and _state(database)["alarms"] >= alarms:
                break
        except Exception:  # schema not there yet
            pass
        time.sleep(0.02)
    assert process.poll() is None, "ingest finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def test_kill_during_ingest_then_rerun(tmp_path: Path) -> None:
    alarms, graph, data, env = _history(tmp_path, ROWS, devices=6, seed=3)
    command = [
        sys.executable,
        "-m",
        "allo.cli",
        "noc",
        "ingest",
        str(alarms),
        "--graph",
        str(graph),
    ]
    # paced at 1000x: one transaction per alarm, about 3 s in all
    process = subprocess.Popen(
        [*command, "--speed", "1000"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    database = data / "allo.db"
    _kill_once_stored(process, database, 400)

    killed = _state(database)
    assert 0 < killed["alarms"] < ROWS
    assert killed["distinct_rows"] == killed["alarms"] and killed["without_incident"] == 0
    assert killed["incident_size"] == killed["alarms"] and killed["orphans"] == 0
    assert killed["open"] > 0 and killed["final"] < killed["alarms"]

    rerun = subprocess.run(
        [*command, "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["already_stored"] == killed["alarms"]
    assert summary["accepted"] == ROWS - killed["alarms"]
    assert summary["recovered"] == killed["alarms"] - killed["final"]
    done = _state(database)
    assert done["alarms"] == done["distinct_rows"] == done["final"] == ROWS
    assert done["incident_size"] == ROWS and done["open"] == 0
    assert done["without_incident"] == 0 and done["orphans"] == 0

    again = subprocess.run(
        [*command, "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert json.loads(again.stdout)["accepted"] == 0 and _state(database) == done


SPLIT_ROWS = 40_000


def test_kill_during_split_ingest_then_rerun(tmp_path: Path) -> None:
    """``--partitions 2``: the parent is killed, its two replay processes notice and stop
    (no orphan keeps writing), and a re-run finishes each stream exactly once."""
    alarms, graph, data, env = _history(tmp_path, SPLIT_ROWS, devices=8, seed=5)
    command = [sys.executable, "-m", "allo.cli", "noc", "ingest", str(alarms)]
    command += ["--graph", str(graph), "--partitions", "2", "--batch-size", "200"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    database = data / "allo.db"
    _kill_once_stored(process, database, 3000)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # its replay processes stop by themselves
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError("replay processes kept running after their parent was killed")

    killed = _state(database)
    assert 0 < killed["alarms"] < SPLIT_ROWS
    assert killed["distinct_rows"] == killed["alarms"] and killed["without_incident"] == 0
    assert killed["incident_size"] == killed["alarms"] and killed["orphans"] == 0

    rerun = subprocess.run(
        [*command, "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert summary["streams"] == [f"{summary['stream']}.0", f"{summary['stream']}.1"]
    assert min(summary["partitions"]["alarms"]) > 0
    assert summary["already_stored"] == killed["alarms"]
    assert summary["accepted"] == SPLIT_ROWS - killed["alarms"]
    assert summary["recovered"] == killed["alarms"] - killed["final"]
    done = _state(database)
    assert done["alarms"] == done["distinct_rows"] == done["final"] == SPLIT_ROWS
    assert done["incident_size"] == SPLIT_ROWS and done["open"] == 0
    assert done["without_incident"] == 0 and done["orphans"] == 0
