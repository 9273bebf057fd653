"""A synthetic alarm history and everything the NOC engine makes of it, as one snapshot.

The snapshot in ``tests/noc/data/golden_pipeline.json`` was written by the engine *before*
its speed-ups (issue 5, "Speed, side by side"); ``test_golden.py`` checks that the
optimised engine still produces it exactly: the incidents (rows, roots, reasons,
explanations), the fold counts, the input problems, and what a persisting engine stores
(alarms and incidents), fed in batches and one alarm per call. Migration ``0005`` dropped
the alarms' ``final`` column: the snapshot lost that key (true for every stored alarm
after the flush) and nothing else.

Regenerate only on purpose (a change of results, reviewed)::

    .venv/bin/python -m tests.noc.golden --write
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select

from allo.domain.alarms import Alarm
from allo.noc.causal import CausalEdge, CausalGraph
from allo.noc.engine import NocEngine
from allo.noc.incidents import incident_json
from allo.noc.pipeline import build_pipeline
from allo.noc.replay import replay
from allo.noc.schema import noc_alarms, noc_incidents
from allo.noc.stages.inhibit import InhibitRule
from allo.noc.store import SqlNocStore
from allo.noc.topology import Topology
from allo.testing.clock import ScriptedClock

GOLDEN = Path(__file__).parent / "data" / "golden_pipeline.json"
START = 1_600_000_000.0
TYPES = [str(i) for i in range(7)]
DEVICES = [str(i) for i in range(40)]


def topology() -> Topology:
    rng = random.Random(7)
    edges = [(str(i), str(i + 1)) for i in range(39)]
    edges += [(str(rng.randrange(40)), str(rng.randrange(40))) for _ in range(15)]
    return Topology(edges, DEVICES)


def model_graph() -> CausalGraph:
    """A fitted-model graph written by hand: 0 -> 1 -> 2, 0 -> 3, 4 -> 5, a 2-cycle 5 <-> 6."""

    def edge(cause: str, effect: str, strength: float, alphas: tuple[float, ...]) -> CausalEdge:
        return CausalEdge(cause, effect, strength, sum(alphas) * 120.0, alphas)

    excitations = (
        edge("0", "1", 40.0, (4e-3, 1.5e-3)),
        edge("1", "2", 25.0, (3e-3, 8e-4)),
        edge("0", "3", 12.0, (1e-3, 6e-4)),
        edge("4", "5", 30.0, (5e-3, 0.0)),
        edge("5", "6", 9.0, (6e-4, 3e-4)),
        edge("6", "5", 5.0, (2e-4, 1e-4)),
    )
    return CausalGraph(
        tuple(TYPES),
        tuple(e for e in excitations if (e.cause, e.effect) != ("6", "5")),
        parameters={"decay_seconds": 120.0, "window_seconds": 600.0, "simultaneous": 1.0},
        background={t: 2e-5 * (1 + int(t)) for t in TYPES},
        self_excitation={t: (8e-4, 2e-4) for t in TYPES},
        excitations=excitations,
    )


def expert_graph() -> CausalGraph:
    """An adjacency matrix without a model: correlation names the strongest edge."""
    return CausalGraph(
        tuple(TYPES),
        (
            CausalEdge("0", "1", 1.0, 0.0),
            CausalEdge("1", "2", 1.0, 0.0),
            CausalEdge("4", "5", 2.0, 0.0),
            CausalEdge("0", "5", 1.0, 0.0),
        ),
    )


def alarms(count: int = 1500) -> list[Alarm]:
    """Roots with cascades on nearby devices, repeats, flapping, transients, bad input."""
    rng = random.Random(2024)
    topo = topology()
    out: list[tuple[float, str, str, float | None]] = []
    moment = START
    while len(out) < count:
        moment += rng.expovariate(1 / 40.0)
        device = rng.choice(DEVICES)
        kind = rng.choice(["0", "0", "4", "3", "6", "2"])
        duration = rng.choice([0.0, 30.0, 45.0, 200.0, 1200.0, None])
        out.append((moment, device, kind, duration))
        for effect in {"0": ["1", "3"], "4": ["5"], "1": ["2"]}.get(kind, []):
            for _ in range(rng.randrange(0, 4)):
                near = sorted(topo.ball(device, 1))
                delay = float(rng.randrange(0, 240))
                out.append((moment + delay, rng.choice(near), effect, rng.choice([0.0, 600.0])))
                if effect == "1" and rng.random() < 0.5:
                    out.append((moment + delay + rng.randrange(0, 120), device, "2", 0.0))
        if rng.random() < 0.05:  # flapping
            for k in range(5):
                out.append((moment + 200.0 * k, device, "6", 20.0))
        if rng.random() < 0.03:  # a repeat within the duplicate window
            out.append((moment + rng.randrange(0, 200), device, kind, None))
    out.sort(key=lambda x: x[0])
    result = []
    for row, (raised, device, kind, duration) in enumerate(out[:count]):
        cleared = None if duration is None else raised + duration
        result.append(Alarm(f"a{row}", device, kind, float(int(raised)), cleared, row=row))
    # bad input: out of order, clear before raise, unknown device, NaN, duplicate id, future
    result[100] = Alarm("a100", "3", "0", result[100].raised_at - 5000, None, row=100)
    result[200] = Alarm("a200", "5", "1", result[200].raised_at, result[200].raised_at - 9, row=200)
    result[300] = Alarm("a300", "nowhere", "0", result[300].raised_at, None, row=300)
    result[400] = Alarm("a400", "8", "4", float("nan"), None, row=400)
    result[500] = Alarm("a499", "9", "4", result[500].raised_at, None, row=500)
    result[600] = Alarm("a600", "9", "3", result[600].raised_at + 9e6, None, row=600)
    return result


def _replay(
    graph: CausalGraph | None, topo: Topology | None, batch_size: int = 50, **kw: Any
) -> dict[str, Any]:
    clock = ScriptedClock(START + 1e6)
    pipeline = build_pipeline(clock, topology=topo, graph=graph, **kw)
    result = replay(alarms(), pipeline, clock, batch_size=batch_size)
    return {
        "incidents": [incident_json(i) for i in result.incidents],
        "folded": dict(sorted(result.folded.items())),
        "problems": result.report.to_json(),
    }


def _engine(batch: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        clock = ScriptedClock(START + 1e6)
        store = SqlNocStore(f"sqlite:///{folder}/noc.db")
        engine = NocEngine(store, clock, stream="gold", topology=topology(), graph=model_graph())
        engine.warm_up()
        data = alarms(700)
        for start in range(0, len(data), batch):
            engine.ingest(data[start : start + batch])
        mid = store.counts("gold")
        engine.flush()
        with store._engine.connect() as c:  # a test reads the tables back
            stored = [
                {k: v for k, v in row._mapping.items() if k not in {"received_at", "id"}}
                for row in c.execute(select(noc_alarms).order_by(noc_alarms.c.seq))
            ]
            incidents = [
                {k: v for k, v in row._mapping.items() if k != "updated_at"}
                for row in c.execute(select(noc_incidents).order_by(noc_incidents.c.id))
            ]
        engine.close()
    return {"before_flush": mid, "alarms": stored, "incidents": incidents}


def snapshot() -> dict[str, Any]:
    topo = topology()
    return json.loads(
        json.dumps(
            {
                "model_topology": _replay(model_graph(), topo),
                "model_topology_batch1": _replay(model_graph(), topo, batch_size=1),
                "model_no_topology": _replay(model_graph(), None),
                "expert_topology": _replay(expert_graph(), topo),
                "no_graph": _replay(None, topo),
                "inhibit": _replay(
                    model_graph(), topo, inhibit_rules=[InhibitRule("4", "*", 0, 300.0)]
                ),
                "engine_batches": _engine(37),
                "engine_one_by_one": _engine(1),
            },
            default=str,
        )
    )


if __name__ == "__main__":
    if "--write" in sys.argv:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(snapshot(), indent=0, sort_keys=True) + "\n")
        print(f"wrote {GOLDEN}")
