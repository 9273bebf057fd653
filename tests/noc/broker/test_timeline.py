"""A consumer's per-second timeline: what its latency tail is made of."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from allo.noc.broker import AlarmPublisher, PartitionConsumer, engine_stream, partition_topology
from allo.noc.broker.timeline import Timeline
from allo.noc.engine import NocEngine
from allo.noc.store import SqlNocStore
from allo.testing.clock import ScriptedClock
from allo.testing.redis import REDIS_MARKS
from tests.noc.broker.helpers import GRAPH, TOPOLOGY, alarms


def consumer(client: Any, tmp_path: Path, **options: Any) -> PartitionConsumer:
    engine = NocEngine(
        SqlNocStore(f"sqlite:///{tmp_path / 'noc.db'}"),
        ScriptedClock(2e6),
        stream=engine_stream(0),
        topology=TOPOLOGY,
        graph=GRAPH,
        history=0,
    )
    made = PartitionConsumer(client, engine, 0, 1, lease_seconds=1.0, block_ms=50, **options)
    made.start()
    return made


def publish(client: Any, count: int, seed: int) -> None:
    sent = [replace(a, id=f"{seed}-{a.id}") for a in alarms(count, seed=seed)]  # own ids
    AlarmPublisher(client, partition_topology(TOPOLOGY, 1)).publish(sent)


@REDIS_MARKS[0]
@REDIS_MARKS[1]
def test_the_timeline_shows_when_alarms_waited_and_what_ran_then(
    client: Any, tmp_path: Path
) -> None:
    late = 0.0

    def wall() -> float:  # the commit looks `late` seconds after the XADD
        return time.time() + late

    made = consumer(client, tmp_path, count=500, wall=wall, checkpoint="background")
    publish(client, 40, seed=8)
    assert made.poll(block=False) == 40
    late = 1.0
    publish(client, 25, seed=9)
    assert made.poll(block=False) == 25
    made.release()
    seconds = made.report.timeline.seconds()
    assert sum(s.entries for s in seconds) == 65
    assert sum(s.batches for s in seconds) == 2
    # only the second batch's alarms waited over 50 ms (about a second)
    assert sum(s.over_50_ms for s in seconds) == 25
    assert max(s.max_latency_ms for s in seconds) >= 1000.0
    slow = made.report.to_json()["timeline"]
    assert isinstance(slow, list) and sum(int(s["over_50_ms"]) for s in slow) == 25
    everything = made.report.to_json(buckets=True)["timeline"]
    assert isinstance(everything, list) and sum(int(s["entries"]) for s in everything) == 65
    made.engine.close()


def test_a_timeline_keeps_only_its_last_seconds() -> None:
    timeline = Timeline(keep=3)
    for second in range(10):
        timeline.batch(
            1000.0 + second,
            entries=2,
            latencies_ms=[10.0, 60.0 + second],
            ingest_ms=5.0,
            read_age_ms=1.0,
            gc_ms=0.0,
        )
    timeline.inline_checkpoint(1009.5, 12.0)
    kept = timeline.seconds()
    assert [s.second for s in kept] == [1007, 1008, 1009]
    assert [s.over_50_ms for s in kept] == [1, 1, 1]
    assert kept[-1].max_latency_ms == 69.0 and kept[-1].inline_checkpoints == 1
    with pytest.raises(ValueError, match="keep must be at least 1"):
        Timeline(keep=0)
