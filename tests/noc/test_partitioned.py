"""A batch replay split across processes, one per topology region, gives the incidents of
one process when no topology link is cut; it falls back to one process otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from allo.clock import SystemClock
from allo.domain.alarms import Alarm
from allo.errors import InvalidInputError
from allo.noc.engine import NocEngine
from allo.noc.replay import plan_partitions, replay, replay_partitioned
from allo.noc.schema import noc_alarms, noc_incidents
from allo.noc.sources import CsvSource
from allo.noc.store import SqlNocStore
from allo.noc.topology import Topology
from tests.noc.golden import alarms as golden_alarms
from tests.noc.golden import model_graph
from tests.noc.golden import topology as golden_topology

# rows of the golden history whose bad input depends on the whole stream's order (out of
# order, unreadable time, far future): see "when regions would cut links" in docs/noc.md
_ORDER_DEPENDENT = {100, 400, 600}


def two_regions() -> Topology:
    """Two copies of the golden topology, side by side and not linked."""
    base = golden_topology()
    edges = [(a, b) for a in base.devices for b in base.neighbours(a) if a < b]
    devices = base.devices + [f"b{d}" for d in base.devices]
    return Topology(edges + [(f"b{a}", f"b{b}") for a, b in edges], devices)


def history(path: Path) -> Path:
    """The golden history on both regions (the second copy 7 s later), in time order,
    written as a PCIC file."""
    clean = [a for a in golden_alarms(900) if a.row not in _ORDER_DEPENDENT]
    both: list[Alarm] = clean + [
        Alarm(a.id, f"b{a.device}", a.alarm_type, a.raised_at + 7.0, a.cleared_at, row=a.row)
        for a in clean
        if a.device != "nowhere"
    ]
    both.sort(key=lambda a: a.raised_at)
    lines = ["alarm_id,device_id,start_timestamp,end_timestamp"]
    for a in both:
        end = "" if a.cleared_at is None else repr(a.cleared_at)
        lines.append(f"{a.alarm_type},{a.device},{a.raised_at!r},{end}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stored(url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Alarms by row and incidents by head row, with incident ids replaced by their head's
    row (ids name the stream, which differs by construction)."""
    store = SqlNocStore(url)
    with store._engine.connect() as c:  # a test reads the tables back
        incidents = [dict(r._mapping) for r in c.execute(select(noc_incidents))]
        rows = [dict(r._mapping) for r in c.execute(select(noc_alarms))]
    store.close()
    head_of = {i["id"]: i["head_row"] for i in incidents}
    alarms = sorted(
        (
            {
                "row": r["row"],
                "incident": head_of[r["incident_id"]],
                **{k: r[k] for k in ("reason", "folded_under", "detail", "issues")},
            }
            for r in rows
        ),
        key=lambda r: r["row"],
    )
    skip = {"id", "stream", "updated_at"}
    by_head = sorted(
        ({k: v for k, v in i.items() if k not in skip} for i in incidents),
        key=lambda i: (i["head_row"], i["started_at"]),
    )
    return alarms, by_head


def test_plan_falls_back_to_one_process_when_a_link_would_be_cut() -> None:
    plan = plan_partitions(golden_topology(), 2)  # one connected component
    assert plan.partitions == 1 and plan.partitioning is None
    assert "cut" in plan.reason
    split = plan_partitions(two_regions(), 2)
    assert split.partitions == 2 and split.partitioning is not None
    regions = {split.partitioning.partition_of(d) for d in ("0", "39")}
    assert len(regions) == 1 and split.partitioning.partition_of("b0") not in regions
    assert plan_partitions(None, 3).partitions == 3  # each device on its own
    assert plan_partitions(two_regions(), 1).partitions == 1
    with pytest.raises(InvalidInputError, match="partitions must be between"):
        plan_partitions(two_regions(), 0)


def test_split_replay_stores_what_one_process_stores(tmp_path: Path) -> None:
    source = history(tmp_path / "alarms.csv")
    topology, graph = two_regions(), model_graph()
    one_url = f"sqlite:///{tmp_path / 'one.db'}"
    clock = SystemClock()
    engine = NocEngine(
        SqlNocStore(one_url), clock, stream="one", topology=topology, graph=graph, history=0
    )
    engine.warm_up()
    single = replay(CsvSource(source), engine, clock, batch_size=40)
    engine.close()

    split_url = f"sqlite:///{tmp_path / 'split.db'}"
    plan = plan_partitions(topology, 2)
    split = replay_partitioned(
        source, split_url, "split", plan, topology=topology, graph=graph, batch_size=40
    )

    assert split.streams == ["split.0", "split.1"]
    assert min(split.per_partition) > 500  # both processes had real work
    assert split.alarms == single.alarms == sum(split.per_partition)
    assert split.incidents == len(single.incidents) > 50
    assert split.folded == single.folded
    assert split.report.counts == engine.report.counts
    one_alarms, one_incidents = stored(one_url)
    split_alarms, split_incidents = stored(split_url)
    assert len(one_alarms) == split.alarms
    assert split_alarms == one_alarms
    assert split_incidents == one_incidents

    again = replay_partitioned(
        source, split_url, "split", plan, topology=topology, graph=graph, batch_size=40
    )
    assert again.accepted == 0 and again.already_stored == split.alarms
    assert stored(split_url) == (split_alarms, split_incidents)


def test_split_replay_refuses_a_one_process_plan(tmp_path: Path) -> None:
    plan = plan_partitions(golden_topology(), 2)
    with pytest.raises(InvalidInputError, match="one process"):
        replay_partitioned(tmp_path / "a.csv", "sqlite://", "s", plan)


def test_split_replay_checks_the_stream_names(tmp_path: Path) -> None:
    plan = plan_partitions(two_regions(), 2)
    with pytest.raises(InvalidInputError, match=r"adds \.<partition>"):
        replay_partitioned(tmp_path / "a.csv", "sqlite://", "x" * 40, plan)
